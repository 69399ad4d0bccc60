"""``mtopt tune``: every cell's study (in parallel with ``jobs``), the tuned settings, then the
best setting of each cell retrained with the test seeds and reduced to a Table III-style test
table by the sweep's machinery (:func:`run_tune`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtopt.errors import InputError
from mtopt.sweep import SweepConfig, SweepResult, plan, run_planned
from mtopt.sweep.observe import TrainFn
from mtopt.sweep.spec import Spec, backbone_label, method_label
from mtopt.tune.config import TuneConfig
from mtopt.tune.space import Space
from mtopt.tune.study import open_storage, open_study, require_optuna
from mtopt.tune.trials import run_study


@dataclass
class Cell:
    """One study: its cell, search space, name and budget."""

    recipe: str
    backbone: Spec
    method: Spec
    space: Space
    study_name: str
    budget: int
    grid: list[dict[str, Any]]

    @property
    def label(self) -> str:
        """The row label: the method without its ranges (``PUB``, ``PUB[fixed_alpha=1]``)."""
        return method_label(Spec(self.method.name, self.space.fixed, self.method.label))


def cells_of(config: TuneConfig) -> list[Cell]:
    """Every study of ``config``, with its name (the config's name and fingerprint, recipe,
    backbone and method spec, ranges included) and budget."""
    import numpy as np

    out = []
    for recipe, b, m in config.cells():
        space = config.space(m)
        grid: list[dict[str, Any]] = []
        budget = config.n_trials
        if config.sampler == "grid":
            grid = space.grid(config.grid_points)
            order = np.random.default_rng(0).permutation(len(grid))  # a fair subset if cut
            grid = [grid[i] for i in order]
            budget = min(budget, len(grid))
        name = ":".join(
            [config.name, config.fingerprint(), Path(recipe).stem, b.key, m.key, m.label or ""]
        )
        out.append(Cell(recipe, b, m, space, name, budget, grid))
    return out


def _study_job(args: dict[str, Any]) -> int:
    """Run one cell's study (in this process or a worker); the trials run."""
    import torch

    torch.set_num_threads(args["threads"])
    storage = open_storage(args["storage"])
    cell: Cell = args["cell"]
    study = open_study(storage, cell.study_name)
    for params in cell.grid[: cell.budget]:
        study.enqueue_trial(params, skip_if_exists=True)
    return run_study(
        study,
        (cell.recipe, cell.backbone, cell.method),
        cell.space,
        budget=cell.budget,
        seeds=args["seeds"],
        overrides=args["overrides"],
        runs_dir=Path(args["runs_dir"]),
        threads=args["threads"],
        train_fn=args.get("train_fn"),
        on_trial=args.get("on_trial"),
    )


def _worker_init() -> None:
    from mtopt.sweep import watch_parent

    watch_parent()


def run_studies(
    config: TuneConfig,
    storage: str,
    runs_dir: Path,
    *,
    jobs: int = 1,
    threads: int = 1,
    progress: bool = True,
    train_fn: TrainFn | None = None,
) -> list[Cell]:
    """Run (or finish) every cell's study; ``jobs`` studies at a time in worker processes."""
    from tqdm.auto import tqdm

    cells = cells_of(config)
    total = sum(c.budget for c in cells)
    bar = tqdm(total=total, desc=f"{config.name}: trials", disable=not progress)
    common = {
        "storage": storage,
        "seeds": config.tune_seeds,
        "overrides": config.overrides,
        "runs_dir": str(runs_dir),
        "threads": threads,
    }
    try:
        if jobs == 1 or train_fn is not None:
            for cell in cells:
                bar.set_postfix_str(cell.study_name.split(":", 2)[2], refresh=False)
                _study_job(common | {"cell": cell, "train_fn": train_fn, "on_trial": bar.update})
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init) as pool:
                futs = {pool.submit(_study_job, common | {"cell": c}): c for c in cells}
                for fut in as_completed(futs):
                    fut.result()
                    bar.update(futs[fut].budget)
    finally:
        bar.close()
    return cells


def summarize(config: TuneConfig, cells: list[Cell], storage: str) -> list[dict[str, Any]]:
    """Per cell: the best trial (value, parameters, run folders) and the trial counts."""
    require_optuna()
    from optuna.trial import TrialState

    st = open_storage(storage)
    rows = []
    for cell in cells:
        study = open_study(st, cell.study_name)
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        failed = [t for t in trials if t.user_attrs.get("run_failed")]
        best = max(done, key=lambda t: t.value) if done else None
        rows.append(
            {
                "recipe": Path(cell.recipe).stem,
                "backbone": backbone_label(cell.backbone),
                "method": cell.label if cell.backbone.name != "stl" else config.baseline,
                "study": cell.study_name,
                "budget": cell.budget,
                "complete": len(done),
                "failed": len(failed),
                "reused": sum(bool(t.user_attrs.get("reused")) for t in done),
                "best_val_auc": None if best is None else best.value,
                "best_params": None if best is None else dict(best.params),
                "best_trial": None if best is None else best.number,
                "trials": [
                    {
                        "number": t.number,
                        "state": t.state.name,
                        "value": t.value,
                        "params": dict(t.params),
                        "skipped": t.user_attrs.get("skipped"),
                        "keys": t.user_attrs.get("keys"),
                    }
                    for t in trials
                ],
            }
        )
    return rows


def _budget_text(config: TuneConfig, cells: list[Cell]) -> str:
    budgets = sorted({c.budget for c in cells})
    per = str(budgets[0]) if len(budgets) == 1 else f"{budgets[0]}–{budgets[-1]}"
    how = "Optuna TPE" if config.sampler == "tpe" else f"a grid ({config.grid_points} per range)"
    spread = "log-uniform" if config.sampler == "tpe" else "log-spaced"
    return (
        f"Tuning budget: {per} trials per (recipe, backbone, method), the same for every method, "
        f"chosen by {how} on the validation AUC average (seeds {config.tune_seeds}, no "
        f"pruning); the learning rate {spread} in {config.lr}. Each best setting retrained "
        f"with seeds {config.test_seeds} and evaluated on the test split."
    )


@dataclass
class TuneResult:
    """A finished tuning: the cells' summaries, the test sweep and the written files."""

    config: TuneConfig
    tuned: list[dict[str, Any]]
    test: SweepResult | None
    files: dict[str, str]
    wall_seconds: float


def run_tune(
    config: TuneConfig,
    out_dir: str | Path,
    *,
    storage: str | None = None,
    runs_dir: str | Path | None = None,
    jobs: int = 1,
    threads: int = 1,
    progress: bool = True,
    test: bool = True,
    train_fn: TrainFn | None = None,
    command: str | None = None,
) -> TuneResult:
    """Tune every cell (resuming its study), write ``tuned.md`` / ``tuned.csv`` / ``tuned.json``
    (and ``trials.png``), then (``test``) retrain each best setting with the test seeds and
    write the test table (``table.md`` / ``.csv``, ``results.json``) into ``out_dir``."""
    from mtopt.tune.tables import tuned_markdown, write_tuned

    if jobs < 1:
        raise InputError(f"jobs: must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    require_optuna()
    if storage is not None:
        open_storage(storage)  # a bad URL fails before anything is written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(runs_dir) if runs_dir is not None else out_dir / "runs"
    storage = storage or f"sqlite:///{out_dir / 'study.db'}"
    open_storage(storage)
    cells = run_studies(
        config, storage, runs_dir, jobs=jobs, threads=threads, progress=progress,
        train_fn=train_fn,
    )  # fmt: skip
    tuned = summarize(config, cells, storage)
    budget = _budget_text(config, cells)
    files = write_tuned(config, tuned, out_dir, budget)
    result: SweepResult | None = None
    if test:
        runs = []
        for cell, row in zip(cells, tuned):
            if row["best_params"] is None:
                continue
            spec = cell.space.concrete(row["best_params"], label=row["method"])
            cfg = SweepConfig(
                name=config.name,
                recipes=[cell.recipe],
                backbones=[cell.backbone],
                methods=[spec],
                seeds=config.test_seeds,
                overrides=config.overrides,
            )
            runs += plan(cfg, runs_dir, threads=threads)
        labels = list(dict.fromkeys(c.label for c in cells if c.backbone.name != "stl"))
        test_cfg = SweepConfig(
            name=f"{config.name}: tuned",
            recipes=config.recipes,
            backbones=config.backbones,
            methods=[Spec(lb.lower(), label=lb) for lb in labels],
            seeds=config.test_seeds,
            overrides=config.overrides,
            baseline=config.baseline,
            stl=config.stl,
            description=(config.description + " " + budget).strip(),
        )
        result = run_planned(
            test_cfg, runs, out_dir, jobs=jobs, threads=threads, progress=progress,
            train_fn=train_fn, command=command, started=t0,
            extra_markdown="Tuned settings:\n\n" + tuned_markdown(tuned),
        )  # fmt: skip
        files |= result.files
    return TuneResult(config, tuned, result, files, time.perf_counter() - t0)
