"""``mtopt compare-solvers``: every registered α backend on seeded scenarios, timed and
certified; writes results.json, results.csv, summary.md and PNG plots."""

from __future__ import annotations

import typer

from mtopt.cli.app import app
from mtopt.errors import InputError

#: library parameter -> this command's flag (for error messages, see mtopt.cli.flags)
FLAGS = {
    "ns": "--n",
    "instances": "--instances",
    "heavy_instances": "--cvxpy-instances",
    "scenarios": "--scenarios",
    "tol": "--tol",
    "solvers": "--solvers",
    "ccp_conics": "--ccp-conic",
}

#: the files compare-solvers writes into --out
OUTPUTS = ("results.json", "results.csv", "summary.md", "time_vs_n.png", "residuals.png")


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{option}: {text!r} is not a comma-separated list of integers") from None
    if not values:
        raise InputError(f"{option}: give at least one value, e.g. {option} 2,3,5,10")
    return values


@app.command("compare-solvers")
def compare_cmd(
    n: str = typer.Option("2,3,5,10", "--n", help="Task counts, comma-separated."),
    instances: int = typer.Option(100, "--instances", help="Instances per (scenario, n)."),
    cvxpy_instances: int = typer.Option(
        30, "--cvxpy-instances", help="Cap for the CVXPY backends (ccp, ccp-raw)."
    ),
    scenarios: str = typer.Option(
        "random,correlated,conflicting,ill-conditioned,near-duplicate,opposite",
        "--scenarios",
        help="Comma-separated scenario slugs.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the instance generator."),
    out: str = typer.Option("compare-solvers-out", "--out", help="Output folder."),
    solvers: str = typer.Option(
        None, "--solvers", help="Comma-separated backends (default: every registered one)."
    ),
    tol: float = typer.Option(1e-6, "--tol", help="Residual that counts as ok."),
    ccp_conic: str = typer.Option(
        "ecos",
        "--ccp-conic",
        help="Conic solvers for ccp/ccp-raw, comma-separated (ecos, clarabel); each one "
        "gives its own rows: ccp, ccp[clarabel].",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm progress bar."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace results already in the output folder."
    ),
) -> None:
    """Time every registered α solver backend (plugins included) and check its residual."""
    from tqdm import tqdm

    from mtopt.cli.flags import as_flags
    from mtopt.compare import CompareConfig, format_summary, run, summarize, write_outputs
    from mtopt.errors import UnknownNameError

    names = [s.strip() for s in solvers.split(",") if s.strip()] if solvers else None
    config = CompareConfig(
        ns=_int_list(n, "--n"),
        instances=instances,
        heavy_instances=min(cvxpy_instances, instances),
        scenarios=[s.strip() for s in scenarios.split(",") if s.strip()],
        seed=seed,
        solvers=names,
        tol=tol,
        ccp_conics=[c.strip().lower() for c in ccp_conic.split(",") if c.strip()],
    )
    from mtopt.compare import backends

    try:
        config.check()
        # unknown names: before the progress bar and any output
        backends(config.solvers, config.ccp_conics)
    except UnknownNameError as exc:
        raise InputError(f"--solvers: {exc}; see `mtopt list solvers`") from None
    except InputError as exc:
        raise as_flags(exc, FLAGS) from None
    from mtopt.cli.outputs import check_out_dir

    check_out_dir(out, OUTPUTS, overwrite)
    bar = tqdm(total=0, disable=not progress, unit="solve", desc="compare-solvers")

    def on_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    try:
        result = run(config, progress=bar.update, on_total=on_total)
    except UnknownNameError as exc:
        raise InputError(f"--solvers: {exc}; see `mtopt list solvers`") from None
    except InputError as exc:
        raise as_flags(exc, FLAGS) from None
    finally:
        bar.close()
    summary = summarize(result)
    paths = write_outputs(result, summary, out)
    typer.echo(format_summary(result, summary, full=False))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
