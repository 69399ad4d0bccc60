"""``mtopt sweep`` and ``mtopt reproduce``: many runs → one table (see :mod:`mtopt.sweep`).

    mtopt sweep --preset quick                       # Table III analogue, ≤ 15 min on 2 cores
    mtopt sweep recipes/regime-imbalance.yaml --methods ls,mgda,pub[solve_every=10] \\
        --backbones mmoe,ple --seeds 3 --jobs 2
    mtopt reproduce table4 --size quick              # also table3, ablations, table5, table1,
    mtopt reproduce all --size quick                 #   solvers, or all of them
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from mtopt.cli.app import app
from mtopt.cli.args import _check_specs, _flags, _seeds
from mtopt.errors import InputError

_KINDS = "auc, ranking, timing, diagnostics, solvers"
#: parameter names of mtopt.sweep's errors -> the flags of `mtopt sweep` / `mtopt reproduce`
SWEEP_FLAGS = {"jobs": "--jobs", "preset": "--preset", "baseline": "--baseline"}
REPRODUCE_FLAGS = {"jobs": "--jobs", "size": "--size"}


def _check_counts(jobs: int, threads: int) -> None:
    """``--jobs`` and ``--threads`` before anything runs (a dry run included)."""
    if jobs < 1:
        raise InputError(f"--jobs: must be >= 1, got {jobs}")
    if threads < 1:
        raise InputError(f"--threads: must be >= 1, got {threads}")


def _check_runs_dir(path: Path) -> None:
    from mtopt.cli.outputs import check_out_dir

    try:
        check_out_dir(path, [], overwrite=True)
    except InputError as exc:
        raise InputError(str(exc).replace("--out", "--runs-dir")) from None


def _report(result: object, quiet: bool) -> None:
    from mtopt.sweep import SweepResult

    assert isinstance(result, SweepResult)
    typer.echo(f"\n## {result.table.title}\n")
    typer.echo(result.table.markdown)
    typer.echo(
        f"\n{len(result.runs)} runs: {result.executed} executed, {result.skipped} reused, "
        f"{result.failed} failed; {result.wall_seconds:.0f} s wall"
    )
    for kind, path in result.files.items():
        typer.echo(f"  {kind}: {path}")


def _dry_run(config: object, runs_dir: Path, threads: int) -> None:
    from mtopt.sweep import SweepConfig, load_result, plan

    assert isinstance(config, SweepConfig)
    runs = plan(config, runs_dir, threads=threads)
    done = 0
    for run in runs:
        rec = load_result(run)
        state = "new" if rec is None else rec.get("status", "?")
        done += state == "ok"
        typer.echo(
            f"{state:>6}  {run.recipe_label}  {run.backbone}+{run.method}  seed {run.seed}  "
            f"{run.run_dir.name}"
        )
    typer.echo(f"{len(runs)} runs planned, {done} already finished ({config.name})")


@app.command("sweep")
def sweep_cmd(
    recipes: list[Path] = typer.Argument(
        None, help="Recipe files (column groups of the table); omit with --preset."
    ),
    preset: str = typer.Option(
        None,
        "--preset",
        "-p",
        help="quick | standard | full (Table III), or EXPERIMENT-SIZE (table4-quick, …).",
    ),
    methods: str = typer.Option(
        "ls,pub",
        "--methods",
        "-m",
        help="Comma-separated method specs: NAME or NAME\\[key=value,…], e.g. "
        "'ls,nashmtl,pub\\[solve_every=10]'.",
    ),
    backbones: str = typer.Option(
        None, "--backbones", "-b", help="Comma-separated backbone specs (default: the recipe's)."
    ),
    seeds: str = typer.Option(
        None, "--seeds", help="A count (3 → 0,1,2; default 2) or a list (0,4,7)."
    ),
    set_: list[str] = typer.Option(
        None, "--set", "-s", help="Override for every run (KEY=VALUE, YAML value); repeatable."
    ),
    kind: str = typer.Option("auc", "--kind", help=f"Table to build: {_KINDS}."),
    baseline: str = typer.Option(
        None, "--baseline", help="Method that is the plain backbone (default ls)."
    ),
    stl: bool = typer.Option(False, "--stl", help="Add a single-task-learning row."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Folder of table.md/.csv, results.json (default sweeps/NAME)."
    ),
    runs_dir: Path = typer.Option(
        None, "--runs-dir", help="Folder of the runs (default OUT/runs); shared = reused."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs in parallel (processes)."),
    threads: int = typer.Option(1, "--threads", help="torch threads per run."),
    retry_failed: bool = typer.Option(
        True, "--retry-failed/--keep-failed", help="Re-run runs that failed before."
    ),
    force: bool = typer.Option(
        False, "--force", help="Re-run finished runs too (e.g. after a code change)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train recipe(s) × methods × backbones × seeds and write one table (resumable)."""
    from mtopt.sweep import custom_sweep, replace_seeds, run_sweep
    from mtopt.sweep import preset as get_preset

    with _flags(SWEEP_FLAGS):
        seed_list = _seeds(seeds)
        if preset is not None:
            if recipes:
                raise InputError("--preset: give either a preset or recipe files, not both")
            config = get_preset(preset)
            if seed_list is not None:
                config = replace_seeds(config, seed_list)
            config.overrides = [*config.overrides, *(set_ or [])]
        else:
            if not recipes:
                raise InputError("mtopt sweep: give recipe files or --preset (e.g. --preset quick)")
            _check_specs(methods, "--methods")
            if backbones:
                _check_specs(backbones, "--backbones")
            config = custom_sweep(
                [str(r) for r in recipes],
                methods,
                backbones,
                seed_list or [0, 1],
                set_ or [],
                name=recipes[0].stem if len(recipes) == 1 else "sweep",
                kind=kind,
                baseline=baseline,
                stl=stl,
            )
        out = out or Path("sweeps") / config.name
        runs = runs_dir or out / "runs"
        _check_counts(jobs, threads)
        if not dry_run:
            from mtopt.cli.outputs import check_out_dir

            check_out_dir(out, [], overwrite=True)  # a sweep resumes: results are reused
            if runs_dir is not None:
                _check_runs_dir(runs_dir)
        if dry_run:
            _dry_run(config, runs, threads)
            return
        command = "mtopt sweep " + " ".join(
            shlex.quote(a)
            for a in (
                ([f"--preset={preset}"] if preset else [str(r) for r in recipes or []])
                + ([] if preset else [f"--methods={methods}"])
                + ([f"--backbones={backbones}"] if backbones and not preset else [])
                + ([f"--seeds={seeds}"] if seeds else [])
                + [f"--set={s}" for s in set_ or []]
                + ([f"--kind={kind}"] if kind != "auc" and not preset else [])
                + (["--stl"] if stl and not preset else [])
            )
        )
        result = run_sweep(
            config,
            out,
            runs_dir=runs,
            jobs=jobs,
            threads=threads,
            retry_failed=retry_failed,
            force=force,
            progress=not quiet,
            command=command,
        )
        _report(result, quiet)
        if result.failed:
            raise typer.Exit(1)


@app.command("reproduce")
def reproduce_cmd(
    name: str = typer.Argument(
        None, help="table3 | table4 | ablations | table5 | table1 | solvers | all | tuned"
    ),
    size: str = typer.Option(
        "quick", "--size", help="quick (≤ 15 min each on 2 cores) | standard | full."
    ),
    out: Path = typer.Option(
        Path("results"), "--out", "-o", help="Root folder: OUT/NAME-SIZE/ tables, OUT/runs."
    ),
    seeds: str = typer.Option(None, "--seeds", help="Replace the preset's seeds."),
    recipe: list[Path] = typer.Option(
        None, "--recipe", "-r", help="Replace the preset's recipes (repeatable)."
    ),
    set_: list[str] = typer.Option(None, "--set", "-s", help="Extra override for every run."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs in parallel (timing runs: always 1)."),
    retry_failed: bool = typer.Option(True, "--retry-failed/--keep-failed"),
    force: bool = typer.Option(False, "--force", help="Re-run finished runs too."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and exit."),
    list_: bool = typer.Option(False, "--list", help="List the experiments and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Reproduce one of the PUB paper's tables (an analogue on embedded data) by name."""
    from mtopt.sweep import EXPERIMENTS, experiment, replace_seeds, run_sweep

    with _flags(REPRODUCE_FLAGS):
        if list_ or name is None:
            from mtopt.tune import TUNE_EXPERIMENTS

            for key, (desc, _builder) in [*EXPERIMENTS.items(), *TUNE_EXPERIMENTS.items()]:
                typer.echo(f"  {key:<10} {desc}")
            if name is None and not list_:
                raise InputError("mtopt reproduce: name an experiment (see the list above) or all")
            return
        _check_counts(jobs, 1)
        if name.strip().lower() == "tuned":
            if force:
                raise InputError(
                    "--force: not for 'tuned' (its trials live in a study); use another --out "
                    "to start afresh"
                )
            recipes = [str(r) for r in recipe or []]
            _reproduce_tuned(name, size, out, seeds, set_ or [], recipes, jobs, dry_run, quiet)
            return
        names = list(EXPERIMENTS) if name.strip().lower() == "all" else [name]
        failed = 0
        seed_list = _seeds(seeds)
        for n in names:
            config = experiment(n, size)
            if seed_list is not None:
                config = replace_seeds(config, seed_list)
            config.overrides = [*config.overrides, *(set_ or [])]
            if recipe:
                config.recipes = [str(r) for r in recipe]
                config.name += "-" + "-".join(Path(r).stem for r in recipe)
            target = out / config.name
            if dry_run:
                _dry_run(config, out / "runs", 1)
                continue
            command = " ".join(
                ["mtopt reproduce", shlex.quote(n), f"--size {size}"]
                + ([f"--seeds {shlex.quote(seeds)}"] if seeds else [])
                + [f"--recipe {shlex.quote(str(r))}" for r in recipe or []]
                + [f"--set {shlex.quote(s)}" for s in set_ or []]
            )
            result = run_sweep(
                config,
                target,
                runs_dir=out / "runs",
                jobs=jobs,
                retry_failed=retry_failed,
                force=force,
                progress=not quiet,
                command=command,
            )
            _report(result, quiet)
            failed += result.failed
        if failed:
            raise typer.Exit(1)


def _reproduce_tuned(
    name: str,
    size: str,
    out: Path,
    seeds: str | None,
    set_: list[str],
    recipes: list[str],
    jobs: int,
    dry_run: bool,
    quiet: bool,
) -> None:
    """``mtopt reproduce tuned``: the tuning experiment (:mod:`mtopt.tune.presets`); its runs
    share ``OUT/runs`` with the other experiments, its study is ``OUT/NAME/study.db``."""
    from mtopt.cli.tune import report_tune
    from mtopt.tune import cells_of, require_optuna, run_tune, tune_experiment

    config = tune_experiment(name, size)
    seed_list = _seeds(seeds)
    if seed_list is not None:
        config.test_seeds = seed_list
    config.overrides = [*config.overrides, *set_]
    if recipes:
        config.recipes = recipes
        config.name += "-" + "-".join(Path(r).stem for r in recipes)
    if dry_run:
        cells = cells_of(config)
        for c in cells:
            typer.echo(f"{c.budget:>3} trials  {c.study_name}")
        typer.echo(f"{len(cells)} studies, {sum(c.budget for c in cells)} trials ({config.name})")
        return
    require_optuna()
    command = " ".join(
        ["mtopt reproduce", shlex.quote(name), f"--size {size}"]
        + ([f"--seeds {shlex.quote(seeds)}"] if seeds else [])
        + [f"--recipe {shlex.quote(r)}" for r in recipes]
        + [f"--set {shlex.quote(s)}" for s in set_]
    )
    result = run_tune(
        config, out / config.name, runs_dir=out / "runs", jobs=jobs, progress=not quiet,
        command=command,
    )  # fmt: skip
    report_tune(result)
    if result.test is not None and result.test.failed:
        raise typer.Exit(1)


@app.command("paired")
def paired_cmd(
    results: Path = typer.Argument(..., help="A sweep's results.json (mtopt sweep / reproduce)."),
    a: str = typer.Argument(..., help="Method label as in the table, e.g. PUB."),
    b: str = typer.Argument(..., help="Method label to compare with, e.g. 'PUB[fixed_alpha=1]'."),
    metric: str = typer.Option("average", "--metric", help="average, or a task name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of Markdown."),
) -> None:
    """Compare two methods of one sweep run by run, paired by (recipe, backbone, seed)."""
    import json

    from mtopt.sweep import paired_comparison, paired_markdown

    try:
        doc = json.loads(results.read_text())
    except FileNotFoundError:
        raise InputError(f"{results}: no such file (give a sweep's results.json)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{results}: not readable as JSON ({exc})") from None
    res = paired_comparison(doc, a, b, metric, source=str(results))
    typer.echo(json.dumps(res, indent=1) if as_json else paired_markdown(res))
