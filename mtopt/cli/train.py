"""``mtopt train RECIPE [--out DIR] [--set KEY=VALUE ...] [--resume]``.

Several processes: ``torchrun --nproc-per-node N -m mtopt train RECIPE`` (docs/scaling.md), or
``mtopt train RECIPE --nproc N``, which checks the recipe and then runs exactly that torchrun
command (``--standalone``: one machine, a free rendezvous port); only rank 0 prints the report.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mtopt.cli.app import app


def _fmt(x: float | None) -> str:
    return "null" if x is None else f"{x:.4f}"


@app.command("train")
def train_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML file (see recipes/ and docs/recipes.md)."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Output folder (default: output.dir, else runs/<recipe name>)."
    ),
    set_: list[str] = typer.Option(
        None,
        "--set",
        "-s",
        help="Override a recipe field, value parsed as YAML; repeatable "
        "(--set train.steps=50 --set method.alpha_scale=exact).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in the output folder from checkpoints/last.pt."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a finished or interrupted run in the output folder."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    nproc: int = typer.Option(
        1,
        "--nproc",
        help="Processes on this machine (data parallel over torch.distributed; N > 1 runs "
        "`torchrun --standalone --nproc-per-node N -m mtopt train ...`).",
    ),
) -> None:
    """Train a multi-task model from a recipe; write metrics, summary.json, checkpoints, plots."""
    import warnings

    from mtopt.errors import InputError
    from mtopt.train.components import load_recipe

    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other; choose one")
    if nproc < 1:
        raise InputError(f"--nproc: must be ≥ 1, got {nproc}")
    rec = load_recipe(recipe, set_ or [])
    if nproc > 1:
        _launch(nproc, recipe, out, set_ or [], resume, overwrite, quiet)
        return
    if quiet:
        rec.output.progress = False

    def _show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        typer.echo(f"mtopt: warning: {message}", err=True)

    warnings.showwarning = _show
    from mtopt.train.trainer import Trainer

    trainer = Trainer(rec, out, source=str(recipe))
    try:
        summary = trainer.run(resume=resume, overwrite=overwrite)
    except InputError as exc:
        raise _as_flags(exc) from exc.__cause__
    if not trainer.dist.is_main:  # torchrun: rank 0 reports
        return
    tasks = summary["tasks"]
    typer.echo(
        f"trained {summary['method']} on {summary['model']} / {summary['data']}: "
        f"{summary['steps']} steps in {summary['seconds']:.1f} s; best validation at epoch "
        f"{summary['best_epoch']} (step {summary['best_step']})"
    )
    width = max(len("average"), *(len(t) for t in tasks))
    typer.echo(f"  {'task'.ljust(width)}  val AUC  test AUC")
    for t in tasks:
        typer.echo(
            f"  {t.ljust(width)}  {_fmt(summary['val']['auc'][t]):>7}  "
            f"{_fmt(summary['test']['auc'][t]):>8}"
        )
    typer.echo(
        f"  {'average'.ljust(width)}  {_fmt(summary['val']['auc_avg']):>7}  "
        f"{_fmt(summary['test']['auc_avg']):>8}"
    )
    if summary.get("alpha"):
        parts = [
            f"{t} {a['mean']:.3g}" for t, a in summary["alpha"].items() if a["mean"] is not None
        ]
        typer.echo(f"  mean task weight: {', '.join(parts)}")
    if summary.get("solver_status"):
        st = ", ".join(f"{k} {v}" for k, v in summary["solver_status"].items())
        typer.echo(f"  solver status: {st}")
    typer.echo(
        f"outputs in {trainer.out}/ (summary.json, metrics.csv, steps.csv, plots/, checkpoints/)"
    )


#: the library's parameter names (leading ``param:`` and advice) -> this command's flags
_FLAGS = {"out_dir": "--out", "resume": "--resume", "overwrite": "--overwrite"}
_ADVICE = (
    ("resume=True", "--resume"),
    ("overwrite=True", "--overwrite"),
    ("another out_dir", "--out with another folder"),
    ("without resuming", "without --resume"),
)


def _as_flags(exc: Exception) -> Exception:
    """A library :class:`InputError` worded with this command's flags instead of parameters."""
    from mtopt.cli.flags import as_flags

    new = as_flags(exc, _FLAGS)  # type: ignore[arg-type]
    if new is exc:
        return exc
    text = str(new)
    for param, flag in _ADVICE:
        text = text.replace(param, flag)
    out = type(new)(text)
    out.__cause__ = new.__cause__
    return out


def _launch(
    nproc: int,
    recipe: Path,
    out: Path | None,
    sets: list[str],
    resume: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Run this command under ``torchrun --standalone --nproc-per-node N`` and exit with its code
    (the recipe was already checked here, so bad input still exits 2 before any process).
    An error in a worker is printed once, as one line, with that worker's exit code
    (:mod:`mtopt.cli.launch`)."""
    from mtopt.cli.launch import run_torchrun
    from mtopt.distributed import env_world_size

    if env_world_size() > 1:
        from mtopt.errors import InputError

        raise InputError("--nproc: already running under torchrun (WORLD_SIZE is set); drop it")
    args = ["train", str(recipe)]
    if out is not None:
        args += ["--out", str(out)]
    for s in sets:
        args += ["--set", s]
    args += ["--resume"] * resume + ["--overwrite"] * overwrite + ["--quiet"] * quiet
    code, message = run_torchrun(nproc, args)
    if code != 0:
        if message is not None:
            typer.echo(f"mtopt: error: {message}", err=True)
        raise typer.Exit(code)
