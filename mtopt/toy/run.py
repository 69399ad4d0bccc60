"""Running the toy: one run (:func:`run_toy`), every (method, start) run in worker processes
(:func:`run_all`), and the points they start from."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mtopt.errors import InputError, RunError
from mtopt.toy.fast import FAST_METHODS, run_group
from mtopt.toy.methods import _stepper, resolve_methods
from mtopt.toy.problem import SCALE, balanced_point, distance_to_front, toy_losses

#: the five initial points of the Nash-MTL authors' toy code
STANDARD_STARTS: tuple[tuple[float, float], ...] = (
    (-8.5, 7.5),
    (0.0, 0.0),
    (9.0, 9.0),
    (-7.5, -0.5),
    (9.0, -1.0),
)
#: Adam learning rate and number of steps of the authors' protocol
DEFAULT_LR = 1e-3
DEFAULT_STEPS = 35000
#: loss-space distance to the Pareto set below which a run "reached the Pareto front"
DEFAULT_TOL = 1e-2
#: at most this many trajectory points are kept per run (plus the final point)
TRAJECTORY_POINTS = 500
#: rough relative cost per step (for scheduling the longest runs first)
_COST = {"cagrad": 8.0, "pub_exact": 8.0, "pub_frobenius": 8.0, "nashmtl": 4.0, "famo": 3.0}
#: rough relative cost per step on the fast path (measured; for splitting it over processes)
_FAST_COST = {"ls": 1.0, "pcgrad": 2.0, "imtl_g": 3.0, "mgda": 3.0, "famo": 4.0, "nashmtl": 6.0,
              "pub_frobenius": 7.0, "pub_exact": 8.0, "cagrad": 9.0}  # fmt: skip


def parse_starts(text: str) -> list[tuple[float, float]]:
    """Parse ``"x1,y1;x2,y2;..."`` into finite points; :class:`InputError` on bad input."""
    points: list[tuple[float, float]] = []
    for part in str(text).split(";"):
        if not part.strip():
            continue
        fields = part.split(",")
        try:
            if len(fields) != 2:
                raise ValueError
            x1, x2 = (float(f) for f in fields)
        except ValueError:
            raise InputError(
                f"starts: {part.strip()!r} is not a point 'x1,x2'; "
                'give points as "x1,x2;x1,x2", e.g. "-8.5,7.5;0,0"'
            ) from None
        if not (math.isfinite(x1) and math.isfinite(x2)):
            raise InputError(f"starts: {part.strip()!r} is not finite; give finite numbers")
        points.append((x1, x2))
    if not points:
        raise InputError('starts: no point given; e.g. "-8.5,7.5;0,0"')
    return points


@dataclass
class ToyRun:
    """One run: a method from one initial point (a row of ``toy.json``)."""

    method: str
    start_index: int
    start: list[float]
    steps: int
    lr: float
    seed: int
    final_point: list[float]
    final_losses: list[float]
    #: loss-space distance to the Pareto front, and whether it is ≤ ``tol``
    distance_to_pareto: float
    reached_pareto: bool
    tol: float
    #: nearest Pareto point: its weight w (u = 14w − 7) and its losses
    nearest_w: float
    nearest_losses: list[float]
    #: loss-space distance to L* (:func:`balanced_point`)
    distance_to_balanced: float
    #: wall-clock and CPU (this process) seconds of the steps
    seconds: float
    cpu_seconds: float
    #: method counters (e.g. PUB's solves / fallbacks, Nash-MTL's fallbacks)
    stats: dict[str, Any] = field(default_factory=dict)
    #: subsampled trajectory: step numbers, points and losses (the final step included)
    trajectory: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_toy(
    method: str,
    start: Sequence[float],
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    scale: float = SCALE,
    tol: float = DEFAULT_TOL,
    start_index: int = 0,
    trajectory_points: int = TRAJECTORY_POINTS,
    progress: Callable[[int], None] | None = None,
    exact_path: bool = False,
) -> ToyRun:
    """Run ``method`` (see the module docstring) from ``start`` for ``steps`` Adam steps.

    ``progress(k)`` is called with the number of steps done since its previous call (every
    1000 steps and at the end). Seeds torch with ``seed`` (PCGrad's order; FAMO). Methods of
    :data:`mtopt.toy.fast.FAST_METHODS` run on the numpy fast path unless ``exact_path``.
    """
    method = resolve_methods([method])[0]
    _check(steps, lr)
    if method in FAST_METHODS and not exact_path:
        return run_fast(method, [start], steps=steps, lr=lr, seed=seed, scale=scale, tol=tol,
                        start_indices=[start_index], trajectory_points=trajectory_points,
                        progress=progress)[0]  # fmt: skip
    import torch

    torch.manual_seed(seed)
    x, step, stats = _stepper(method, start, float(lr), int(seed), float(scale))
    every = max(1, -(-steps // max(1, trajectory_points)))
    rec_steps: list[int] = []
    rec_x: list[list[float]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    for t in range(steps):
        if t % every == 0:
            rec_steps.append(t)
            rec_x.append(x.detach().tolist())
        step()
        if progress is not None and (t + 1) % 1000 == 0:
            progress(t + 1 - done)
            done = t + 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if progress is not None and done < steps:
        progress(steps - done)
    final = x.detach().tolist()
    rec_steps.append(steps)
    rec_x.append(final)
    return _make_run(method, start, start_index, steps, lr, seed, scale, tol, rec_steps, rec_x,
                     seconds, cpu, stats())  # fmt: skip


def run_fast(
    method: str | Sequence[str],
    starts: Sequence[Sequence[float]],
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    scale: float = SCALE,
    tol: float = DEFAULT_TOL,
    start_indices: Sequence[int] | None = None,
    trajectory_points: int = TRAJECTORY_POINTS,
    progress: Callable[[int], None] | None = None,
) -> list[ToyRun]:
    """One run per start of one or several :data:`~mtopt.toy.fast.FAST_METHODS` methods, all
    as one batch (:func:`mtopt.toy.fast.run_group`); rows ordered by method, then start. Each
    run's seconds are its method's share divided evenly over the starts. A method that leaves
    the fast path (a non-finite value) is rerun on the per-run path."""
    _check(steps, lr)
    methods = [method] if isinstance(method, str) else list(method)
    idx = list(range(len(starts))) if start_indices is None else list(start_indices)
    every = max(1, -(-steps // max(1, trajectory_points)))
    rec_steps, res = run_group(
        methods, starts, steps=steps, lr=float(lr), scale=float(scale), every=every,
        progress=progress,
    )  # fmt: skip
    n = len(starts)
    runs: list[ToyRun] = []
    for m in methods:
        r = res[m]
        if r.left:  # the per-run path owns the non-finite policy
            counted = _Credit(progress, r.reported)
            runs += [run_toy(m, s, steps=steps, lr=lr, seed=seed, scale=scale, tol=tol,
                             start_index=idx[b], trajectory_points=trajectory_points,
                             progress=counted, exact_path=True)
                     for b, s in enumerate(starts)]  # fmt: skip
            continue
        runs += [_make_run(m, s, idx[b], steps, lr, seed, scale, tol, [*rec_steps, steps],
                           [*r.rec_x[:, b].tolist(), r.final[b].tolist()], r.seconds / n,
                           r.cpu_seconds / n, r.stats[b])
                 for b, s in enumerate(starts)]  # fmt: skip
    return runs


class _Credit:
    """``progress`` less the first ``credit`` steps (already reported by the fast path)."""

    def __init__(self, progress: Callable[[int], None] | None, credit: int) -> None:
        self.progress, self.credit = progress, int(credit)

    def __call__(self, k: int) -> None:
        used = min(k, self.credit)
        self.credit -= used
        if self.progress is not None and k > used:
            self.progress(k - used)


def split_methods(methods: Sequence[str], groups: int) -> list[list[str]]:
    """Fast-path methods in at most ``groups`` batches of about equal cost (costliest first)."""
    out: list[list[str]] = [[] for _ in range(max(1, min(groups, len(methods))))]
    load = [0.0] * len(out)
    for m in sorted(methods, key=lambda m: -_FAST_COST.get(m, 1.0)):
        k = load.index(min(load))
        out[k].append(m)
        load[k] += _FAST_COST.get(m, 1.0)
    return [g for g in out if g]


def _check(steps: Any, lr: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps: must be an integer ≥ 1, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr: must be a positive number, got {lr!r}")


def _make_run(method: str, start: Sequence[float], start_index: int, steps: int, lr: float,
              seed: int, scale: float, tol: float, rec_steps: list[int], rec_x: list[list[float]],
              seconds: float, cpu: float, stats: dict[str, Any]) -> ToyRun:  # fmt: skip
    final = rec_x[-1]
    if not all(math.isfinite(v) for v in final):
        raise RunError(f"{method} from {list(start)}: the point became non-finite")
    traj_losses = toy_losses(np.asarray(rec_x), scale)
    fl = traj_losses[-1]
    dist, w, near = distance_to_front(fl, scale)
    _, lstar = balanced_point(scale)
    return ToyRun(
        method=method,
        start_index=int(start_index),
        start=[float(v) for v in start],
        steps=steps,
        lr=float(lr),
        seed=int(seed),
        final_point=[float(v) for v in final],
        final_losses=[float(v) for v in fl],
        distance_to_pareto=dist,
        reached_pareto=bool(dist <= tol),
        tol=float(tol),
        nearest_w=w,
        nearest_losses=[float(v) for v in near],
        distance_to_balanced=float(np.linalg.norm(fl - lstar)),
        seconds=seconds,
        cpu_seconds=cpu,
        stats=stats,
        trajectory={
            "step": rec_steps,
            "x": [[_g7(a), _g7(b)] for a, b in rec_x],
            "losses": [[_g7(a), _g7(b)] for a, b in traj_losses],
        },
    )


def _g7(v: float) -> float:
    """``v`` to 7 significant digits (float32 resolution; keeps toy.json small)."""
    return float(f"{float(v):.7g}")


# ------------------------------------------------------------------------------ many runs
_QUEUE: Any = None


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue
    import torch

    torch.set_num_threads(1)


def _worker(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    queue = _QUEUE
    cb = None if queue is None else queue.put
    return _do(kwargs, cb)


def _do(task: dict[str, Any], progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    """One task of :func:`run_all`: a fast-path group (key ``group``) or one per-run unit."""
    kw = dict(task)
    if "group" in kw:
        methods, pts = kw.pop("group"), kw.pop("starts")
        return [r.to_dict() for r in run_fast(methods, pts, progress=progress, **kw)]
    return [run_toy(progress=progress, **kw).to_dict()]


def run_all(
    methods: Sequence[str] | None = None,
    starts: Sequence[Sequence[float]] | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    scale: float = SCALE,
    tol: float = DEFAULT_TOL,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    exact_path: bool = False,
) -> list[dict[str, Any]]:
    """Every (method, start) run, in ``jobs`` processes; rows ordered by method, then start.

    ``progress(k)`` receives step counts as they complete (total ``len(methods)·len(starts)·
    steps``). Results do not depend on ``jobs``. The fast-path methods run as batches of all
    their starts, split over the processes in groups of about equal cost
    (:func:`split_methods`); ``exact_path``: every run on the per-run path, one task per run.
    """
    names = resolve_methods(methods)
    pts = [tuple(float(v) for v in s) for s in (starts or STANDARD_STARTS)]
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs: must be an integer ≥ 1, got {jobs!r}")
    common = {"steps": steps, "lr": lr, "seed": seed, "scale": scale, "tol": tol}
    fast = [] if exact_path else [m for m in names if m in FAST_METHODS]
    units = [
        {"method": m, "start": list(p), "start_index": i, **common, "exact_path": exact_path}
        for m in names
        if m not in fast
        for i, p in enumerate(pts)
    ]
    order = {(m, i): k for k, (m, i) in enumerate((m, i) for m in names for i in range(len(pts)))}
    workers = max(1, min(jobs, os.cpu_count() or jobs))
    # costliest first: the fast groups, then the per-run units (LPT scheduling)
    tasks: list[dict[str, Any]] = [
        {"group": g, "starts": [list(p) for p in pts], **common}
        for g in (split_methods(fast, workers) if fast else [])
    ] + sorted(units, key=lambda u: -_COST.get(u["method"], 1.0))
    rows: list[dict[str, Any]] = []
    if workers == 1 or len(tasks) == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for task in tasks:
                rows += _do(task, progress)
        finally:
            torch.set_num_threads(threads)
        rows.sort(key=lambda r: order[(r["method"], r["start_index"])])
        return rows

    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with ProcessPoolExecutor(
        min(workers, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=(q,)
    ) as ex:
        pending = {ex.submit(_worker, t) for t in tasks}

        def drain() -> None:
            while True:
                try:
                    k = q.get_nowait()
                except queue_mod.Empty:
                    return
                if progress is not None:
                    progress(k)

        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            drain()
            for fut in finished:
                rows += fut.result()
        time.sleep(0.05)
        drain()
    rows.sort(key=lambda r: order[(r["method"], r["start_index"])])
    return rows
