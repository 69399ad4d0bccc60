"""Executing a sweep: one run (:func:`execute`, in this process or a worker), the worker
pool, resuming from ``result.json`` and :func:`run_sweep` (plan → run → reduce → write)."""

from __future__ import annotations

import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtopt.errors import InputError
from mtopt.io import atomic_write_json
from mtopt.sweep._format import _jsonable
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.observe import TrainFn, train_observed
from mtopt.sweep.planning import PlannedRun, _run_name, code_version, plan
from mtopt.sweep.report import reduce, write_outputs
from mtopt.sweep.table import Table

RESULT_FILE = "result.json"


def execute(payload: dict[str, Any], train_fn: TrainFn | None = None) -> dict[str, Any]:
    """Run one planned run (``PlannedRun.payload()``); write and return its result record.

    Any exception of the run is recorded (type, message, traceback tail) with
    ``status: failed``; it does not propagate (KeyboardInterrupt does).
    """

    fn = train_fn or train_observed
    run_dir = Path(payload["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {
        "key": payload["key"],
        "observe": payload["observe"],
        "code": code_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary, observations = fn(
                payload["recipe"], run_dir, source=payload["source"], observe=payload["observe"]
            )
        record.update(
            status="ok",
            tasks=list(summary["tasks"]),
            test=summary["test"],
            val=summary["val"],
            summary={
                k: summary.get(k)
                for k in (
                    "steps",
                    "epochs_completed",
                    "samples",
                    "seconds",
                    "best_epoch",
                    "best_step",
                    "alpha",
                    "solver_status",
                    "warnings",
                )
            },
            observations=observations,
        )
    except Exception as exc:  # recorded, the sweep goes on (the brief: failures are data)
        record.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exc().splitlines(True)[-12:]),
        )
    record["wall_seconds"] = round(time.perf_counter() - t0, 3)
    record["cpu_seconds"] = round(time.process_time() - c0, 3)  # load-independent cost
    atomic_write_json(run_dir / RESULT_FILE, _jsonable(record))
    return record


def _worker_init() -> None:
    import torch

    watch_parent()
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process


def watch_parent(period: float = 1.0) -> None:
    """Exit this process (code 1) soon after its parent dies: a sweep worker must not outlive
    a ``mtopt sweep`` that was killed (SIGTERM / SIGKILL skip the pool's clean-up, and an
    orphaned worker would wait on its task queue forever). The interrupted run is re-trained
    on the next invocation. A daemon thread polls ``os.getppid()``."""
    import threading

    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(period)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=loop, name="mtopt-watch-parent", daemon=True).start()


def load_result(run: PlannedRun) -> dict[str, Any] | None:
    """The stored result of a run when its key matches, else None."""
    p = run.run_dir / RESULT_FILE
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("key") == run.key else None


@dataclass
class SweepResult:
    """Runs of a finished sweep, the rendered table and where it was written."""

    config: SweepConfig
    runs: list[PlannedRun]
    records: list[dict[str, Any]]
    table: Table
    executed: int
    skipped: int
    failed: int
    wall_seconds: float
    files: dict[str, str]


def run_sweep(
    config: SweepConfig,
    out_dir: str | Path,
    *,
    runs_dir: str | Path | None = None,
    jobs: int = 1,
    threads: int = 1,
    retry_failed: bool = True,
    force: bool = False,
    progress: bool = True,
    train_fn: TrainFn | None = None,
    recipes_dir: Path | None = None,
    command: str | None = None,
) -> SweepResult:
    """Plan, run what is not finished (in parallel with ``jobs``), reduce, write the tables.

    Writes ``table.md``, ``table.csv`` and ``results.json`` into ``out_dir`` (atomically).
    ``force`` re-runs finished runs too (after a code change). ``train_fn`` replaces the real
    trainer (tests); with it, runs execute in this process.
    """
    if jobs < 1:
        raise InputError(f"jobs: must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = Path(runs_dir) if runs_dir is not None else out_dir / "runs"
    runs = plan(config, runs_dir, threads=threads, recipes_dir=recipes_dir)
    return run_planned(
        config,
        runs,
        out_dir,
        jobs=jobs,
        threads=threads,
        retry_failed=retry_failed,
        force=force,
        progress=progress,
        train_fn=train_fn,
        command=command,
        started=t0,
    )


def run_planned(
    config: SweepConfig,
    runs: list[PlannedRun],
    out_dir: str | Path,
    *,
    jobs: int = 1,
    threads: int = 1,
    retry_failed: bool = True,
    force: bool = False,
    progress: bool = True,
    train_fn: TrainFn | None = None,
    command: str | None = None,
    started: float | None = None,
    extra_markdown: str = "",
) -> SweepResult:
    """Run the planned ``runs`` that are not finished, reduce them with ``config``'s reducer and
    write the tables (the second half of :func:`run_sweep`; ``mtopt tune`` plans its test runs
    per cell, with each cell's tuned settings, and hands them here). ``extra_markdown`` is
    written into ``table.md`` after the table."""
    from tqdm.auto import tqdm

    if jobs < 1:
        raise InputError(f"jobs: must be >= 1, got {jobs}")
    t0 = time.perf_counter() if started is None else started
    out_dir = Path(out_dir)
    records: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    seen_keys: dict[str, int] = {}
    dupes: dict[int, int] = {}
    for i, run in enumerate(runs):
        if run.key in seen_keys:  # the same run twice in one sweep (e.g. identical specs)
            dupes[i] = seen_keys[run.key]
            continue
        seen_keys[run.key] = i
        rec = None if force else load_result(run)
        if rec is not None and (rec.get("status") == "ok" or not retry_failed):
            records[i] = rec
        else:
            todo.append(i)
    skipped = len(runs) - len(todo) - len(dupes)
    if config.kind == "timing" or train_fn is not None:
        jobs = 1
    bar = tqdm(total=len(todo), desc=f"{config.name}: runs", disable=not progress or not todo)
    try:
        if jobs == 1 or len(todo) <= 1:
            for i in todo:
                bar.set_postfix_str(_run_name(runs[i]), refresh=False)
                records[i] = _execute_local(runs[i].payload(), train_fn, threads)
                bar.update(1)
        else:
            _execute_parallel(runs, todo, records, jobs, bar)
    finally:
        bar.close()
    for i, j in dupes.items():
        records[i] = records[j]
    ordered = [records[i] for i in range(len(runs))]
    table = reduce(config, runs, ordered)
    failed = sum(1 for i in todo if records[i].get("status") != "ok")
    wall = time.perf_counter() - t0
    files = write_outputs(
        config,
        runs,
        ordered,
        table,
        out_dir,
        wall_seconds=wall,
        executed=len(todo),
        skipped=skipped,
        command=command,
        extra_markdown=extra_markdown,
    )
    return SweepResult(config, runs, ordered, table, len(todo), skipped, failed, wall, files)


def _execute_local(payload: dict[str, Any], train_fn: TrainFn | None, threads: int) -> dict:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return execute(payload, train_fn)
    finally:
        torch.set_num_threads(before)


def _execute_parallel(
    runs: list[PlannedRun],
    todo: list[int],
    records: dict[int, dict[str, Any]],
    jobs: int,
    bar: Any,
) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_worker_init
    ) as pool:
        futures = {pool.submit(execute, runs[i].payload()): i for i in todo}
        for fut in as_completed(futures):
            i = futures[fut]
            records[i] = fut.result()
            bar.set_postfix_str(_run_name(runs[i]), refresh=False)
            bar.update(1)
