"""``mtopt tune``: tune each method's hyperparameters with an equal budget, then test
(see :mod:`mtopt.tune`; needs the optional extra ``mtopt[tune]``).

    mtopt tune recipes/regime-imbalance.yaml --methods 'ls,nashmtl,pub,cagrad[c=0.1..0.9]' \\
        --backbones mmoe,ple --trials 8 --seeds 3 --jobs 2
    mtopt tune … --storage sqlite:///study.db      # resume, or share with other processes
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from mtopt.cli.app import app
from mtopt.cli.args import _check_specs, _flags, _seeds
from mtopt.errors import InputError

TUNE_FLAGS = {
    "jobs": "--jobs",
    "n_trials": "--trials",
    "sampler": "--sampler",
    "grid_points": "--grid-points",
    "storage": "--storage",
    "lr": "--lr",
    "seeds": "--seeds",
}


def report_tune(result: object) -> None:
    """Print the tuned settings and the test table of a :class:`mtopt.tune.TuneResult`."""
    from mtopt.tune import TuneResult
    from mtopt.tune.tables import tuned_markdown

    assert isinstance(result, TuneResult)
    typer.echo(f"\n## {result.config.name}: tuned settings\n")
    typer.echo(tuned_markdown(result.tuned))
    if result.test is not None:
        typer.echo(f"\n## {result.test.table.title}\n")
        typer.echo(result.test.table.markdown)
    typer.echo(f"\n{result.wall_seconds:.0f} s wall")
    for kind, path in result.files.items():
        typer.echo(f"  {kind}: {path}")


@app.command("tune")
def tune_cmd(
    recipes: list[Path] = typer.Argument(..., help="Recipe files (column groups of the table)."),
    methods: str = typer.Option(
        "ls,pub",
        "--methods",
        "-m",
        help="Method specs; a range searches a field: 'cagrad\\[c=0.1..0.9]', "
        "'pub\\[alpha_scale=frobenius|exact]', 'x\\[k=log:1e-4..1e-2]'.",
    ),
    backbones: str = typer.Option(
        None, "--backbones", "-b", help="Backbone specs (default: the recipe's)."
    ),
    lr: str = typer.Option("1e-4..3e-2", "--lr", help="Learning-rate range, log-uniform."),
    trials: int = typer.Option(8, "--trials", "-n", help="Trials per cell (equal budget)."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe | grid."),
    grid_points: int = typer.Option(3, "--grid-points", help="Grid values per range."),
    tune_seeds: str = typer.Option("0", "--tune-seeds", help="Training seeds of one trial."),
    seeds: str = typer.Option("2", "--seeds", help="Test seeds: a count (3) or a list (0,4,7)."),
    set_: list[str] = typer.Option(None, "--set", "-s", help="Override for every run."),
    baseline: str = typer.Option("LS", "--baseline", help="Label of the plain backbone."),
    stl: bool = typer.Option(False, "--stl", help="Tune and test single-task learning too."),
    storage: str = typer.Option(
        None, "--storage", help="Optuna storage URL (default sqlite:///OUT/study.db)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default tunes/NAME)."),
    runs_dir: Path = typer.Option(
        None, "--runs-dir", help="Folder of the runs (default OUT/runs); shared = reused."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Studies in parallel (processes)."),
    threads: int = typer.Option(1, "--threads", help="torch threads per run."),
    test: bool = typer.Option(True, "--test/--no-test", help="Retrain the best and test."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Tune each method's learning rate (and ranged fields) with an equal budget, then test."""
    from mtopt.sweep import parse_specs
    from mtopt.tune import TuneConfig, require_optuna, run_tune

    with _flags(TUNE_FLAGS):
        _check_specs(methods, "--methods")
        if backbones:
            _check_specs(backbones, "--backbones")
        if threads < 1:
            raise InputError(f"--threads: must be >= 1, got {threads}")
        try:  # a list, always (a single number is one seed, not a count)
            tseeds = [int(x) for x in tune_seeds.replace(" ", "").split(",") if x]
        except ValueError:
            raise InputError(f"--tune-seeds {tune_seeds!r}: give seeds, e.g. 0 or 0,1") from None
        if backbones:
            bs = parse_specs(backbones)
        else:
            from mtopt.config import read_recipe_file
            from mtopt.sweep import Spec, resolve_recipe

            first = read_recipe_file(resolve_recipe(recipes[0]))
            bs = [Spec((first.get("model") or {}).get("name", "mmoe"))]
        name = recipes[0].stem if len(recipes) == 1 else "tune"
        config = TuneConfig(
            name=name,
            recipes=[str(r) for r in recipes],
            backbones=bs,
            methods=parse_specs(methods),
            lr=lr,
            n_trials=trials,
            tune_seeds=tseeds,
            test_seeds=_seeds(seeds) or [0, 1],
            overrides=list(set_ or []),
            sampler=sampler,
            grid_points=grid_points,
            baseline=baseline,
            stl=stl,
        )
        require_optuna()
        out = out or Path("tunes") / name
        from mtopt.cli.outputs import check_out_dir

        check_out_dir(out, [], overwrite=True)  # a tuning resumes: results are reused
        command = "mtopt tune " + " ".join(
            shlex.quote(a)
            for a in [str(r) for r in recipes]
            + [f"--methods={methods}", f"--lr={lr}", f"--trials={trials}", f"--seeds={seeds}"]
            + ([f"--backbones={backbones}"] if backbones else [])
            + ([f"--sampler={sampler}"] if sampler != "tpe" else [])
            + [f"--set={s}" for s in set_ or []]
            + (["--stl"] if stl else [])
        )
        result = run_tune(
            config,
            out,
            storage=storage,
            runs_dir=runs_dir,
            jobs=jobs,
            threads=threads,
            progress=not quiet,
            test=test,
            command=command,
        )
        report_tune(result)
        if result.test is not None and result.test.failed:
            raise typer.Exit(1)
