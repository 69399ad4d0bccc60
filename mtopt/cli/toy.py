"""``mtopt toy``: the two-objective toy of PUB's Fig. 2 (Nash-MTL's variant of CAGrad's toy).

Runs each method from each initial point with Adam, writes ``toy.json`` (one row per run: final
point and losses, distance to the Pareto set, whether it reached the front, subsampled
trajectory) and ``toy.png`` (trajectories in loss space with the Pareto front, one panel per
method). Logic lives in :mod:`mtopt.toy`.
"""

from __future__ import annotations

import typer

from mtopt.cli.app import app
from mtopt.cli.flags import as_flags
from mtopt.errors import InputError

#: the library's parameter names -> this command's flags
_FLAGS = {
    "method": "--methods",
    "methods": "--methods",
    "starts": "--starts",
    "steps": "--steps",
    "lr": "--lr",
    "tol": "--tol",
    "jobs": "--jobs",
}


@app.command("toy")
def toy_cmd(
    methods: str = typer.Option(
        None,
        "--methods",
        help="Comma-separated: ls, mgda, pcgrad, cagrad, imtl_g, nashmtl, famo, pub_exact, "
        "pub_frobenius ('pub' = both). Default: all.",
    ),
    starts: str = typer.Option(
        None,
        "--starts",
        help='Initial points "x1,x2;x1,x2;..." (default: the 5 standard ones of Nash-MTL).',
    ),
    steps: int = typer.Option(35000, "--steps", help="Adam steps per run (paper: 35000)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate (paper: 1e-3)."),
    out: str = typer.Option("toy-out", "--out", help="Output folder (toy.json, toy.png)."),
    jobs: int = typer.Option(
        0, "--jobs", help="Parallel processes (0: one per CPU core). Results do not depend on it."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed (PCGrad's order, FAMO)."),
    tol: float = typer.Option(
        1e-2, "--tol", help="Loss-space distance to the Pareto front that counts as reached."
    ),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write toy.png."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace toy.json / toy.png already in the output folder."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="tqdm progress bar."),
    exact_path: bool = typer.Option(
        False,
        "--exact-path",
        help="Run every method on the per-run torch path (default: every method on the numpy "
        "fast path, all starts at once; same results, see docs/toy.md).",
    ),
) -> None:
    """Fig. 2 analogue: which methods reach the Pareto front of the toy problem, from where."""
    import math
    import os
    import time

    from mtopt.cli.outputs import check_out_dir
    from mtopt.io import atomic_write_json
    from mtopt.toy import (
        SCALE,
        STANDARD_STARTS,
        balanced_point,
        parse_starts,
        plot_runs,
        resolve_methods,
        run_all,
        summary_table,
    )

    try:
        names = resolve_methods([m for m in methods.split(",") if m.strip()] if methods else None)
        points = parse_starts(starts) if starts is not None else [tuple(p) for p in STANDARD_STARTS]
    except InputError as exc:
        raise as_flags(exc, _FLAGS) from exc.__cause__
    if steps < 1:
        raise InputError(f"--steps: must be ≥ 1, got {steps}")
    if not (math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr: must be a positive number, got {lr}")
    if not (math.isfinite(tol) and tol > 0):
        raise InputError(f"--tol: must be a positive number, got {tol}")
    if jobs < 0:
        raise InputError(f"--jobs: must be ≥ 0 (0: one per CPU core), got {jobs}")
    n_jobs = jobs or (os.cpu_count() or 1)
    out_dir = check_out_dir(out, ["toy.json", "toy.png"], overwrite)

    from tqdm import tqdm

    total = len(names) * len(points) * steps
    bar = tqdm(total=total, disable=not progress, unit="step", unit_scale=True, desc="toy")
    t0 = time.perf_counter()
    try:
        rows = run_all(
            names, points, steps=steps, lr=lr, seed=seed, tol=tol, jobs=n_jobs,
            progress=bar.update,
            exact_path=exact_path,
        )  # fmt: skip
    except InputError as exc:
        raise as_flags(exc, _FLAGS) from exc.__cause__
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    xstar, lstar = balanced_point(SCALE)
    doc = {
        "problem": "Nash-MTL toy (CAGrad's, first loss x0.1); see docs/toy.md",
        "scale": SCALE,
        "steps": steps,
        "lr": lr,
        "seed": seed,
        "tol": tol,
        "jobs": n_jobs,
        "wall_seconds": wall,
        "cpu_seconds": sum(r["cpu_seconds"] for r in rows),
        "methods": names,
        "starts": [list(p) for p in points],
        "balanced_point": {"x": xstar.tolist(), "losses": lstar.tolist()},
        "runs": rows,
    }
    paths = [atomic_write_json(out_dir / "toy.json", doc, indent=None)]
    if plot:
        plot_runs(rows, out_dir / "toy.png")
        paths.append(out_dir / "toy.png")
    typer.echo(summary_table(rows))
    cpu = sum(r["cpu_seconds"] for r in rows)
    typer.echo(
        f"wall time {wall:.1f} s with {n_jobs} process(es); CPU time of the runs {cpu:.1f} s"
    )
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
