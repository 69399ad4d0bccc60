"""Observing a method while it trains: step and solve times, solver status, cosines
of gradient and update (:class:`ObservedMethod`, :func:`train_observed`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.sweep.stats import _cos, _mean


class ObservedMethod:
    """Wraps a method for the trainer and records per-step observations.

    Always: seconds of ``method.step`` (backward passes + update), solve seconds, solver status
    and residual. With ``diagnostics=True`` also (PUB paper §III): the cosine of gradient and
    update on the task-specific parameters and on the shared parameters, and the cosine between
    the two (first two) tasks' shared-parameter gradients. *Gradient* is what the method feeds
    its optimiser (``.grad`` after the step: the aggregated direction of a gradient-level
    method, the gradient of ``Σᵢ Lᵢ`` for LS and the towers); *update* is ``θ_before − θ_after``.
    PUB does not use ``.grad`` of the shared parameters, so for PUB the values come from its own
    ``diagnostics=True`` (gradient ``Σαᵢgᵢ``, the one its moments are fed).
    """

    def __init__(self, inner: Any, model: Any, *, diagnostics: bool = False) -> None:
        self.inner = inner
        self.model = model
        self.n_tasks = inner.n_tasks
        self.has_weights = inner.has_weights
        self.needs_closure = inner.needs_closure
        self.diagnostics = diagnostics
        self.native = "cos_shared" in _pub_diag_keys(inner)
        seen: set[int] = set()
        self.shared = _unique([p for p in model.shared_parameters() if p.requires_grad], seen)
        self.tasks = _unique(
            [p for ps in model.all_task_parameters() for p in ps if p.requires_grad], seen
        )
        self.step_seconds: list[float] = []
        self.step_cpu: list[float] = []
        #: process CPU / wall clock at the first step's start and the last step's end
        self.span: list[float | None] = [None, None, None, None]
        self.solve_seconds: list[float] = []
        self.statuses: dict[str, int] = {}
        self.residuals: list[float] = []
        self.cos_shared: list[float | None] = []
        self.cos_task: list[float | None] = []
        self.task_grad_cos: list[float | None] = []

    def step(self, losses: Sequence[Any], **kw: Any) -> Any:
        """Forward to the wrapped method's ``step`` and record what it did."""
        import torch

        before_s = before_t = None
        if self.diagnostics:
            self.task_grad_cos.append(self._task_grad_cos(losses))
            if not self.native:
                before_s = [p.detach().clone() for p in self.shared]
                before_t = [p.detach().clone() for p in self.tasks]
        c0, t0 = time.process_time(), time.perf_counter()
        if self.span[0] is None:
            self.span[0], self.span[1] = c0, t0
        info = self.inner.step(losses, **kw)
        c1, t1 = time.process_time(), time.perf_counter()
        self.step_seconds.append(t1 - t0)
        self.step_cpu.append(c1 - c0)
        self.span[2], self.span[3] = c1, t1
        if info.solver_status is not None:
            st = str(info.solver_status)
            self.statuses[st] = self.statuses.get(st, 0) + 1
            if info.solve_seconds is not None and st != "reused":
                self.solve_seconds.append(float(info.solve_seconds))
        res = (info.extra or {}).get("residual")
        if res is not None and info.solver_status not in (None, "reused"):
            self.residuals.append(float(res))
        if self.diagnostics:
            if self.native:
                ex = info.extra or {}
                self.cos_shared.append(_finite_or_none(ex.get("cos_shared")))
                self.cos_task.append(_finite_or_none(ex.get("cos_task")))
            else:
                with torch.no_grad():
                    self.cos_shared.append(_grad_update_cos(self.shared, before_s))
                    self.cos_task.append(_grad_update_cos(self.tasks, before_t))
        return info

    def _task_grad_cos(self, losses: Sequence[Any]) -> float | None:
        import torch

        if len(losses) < 2 or not self.shared:
            return None
        gs = []
        for L in losses[:2]:
            if not getattr(L, "requires_grad", False):
                return None
            g = torch.autograd.grad(L, self.shared, retain_graph=True, allow_unused=True)
            gs.append(g)
        dot = na = nb = 0.0
        for a, b in zip(*gs):
            if a is None or b is None:
                continue
            a64, b64 = a.detach().double(), b.detach().double()
            dot += float((a64 * b64).sum())
            na += float((a64 * a64).sum())
            nb += float((b64 * b64).sum())
        return _cos(dot, na, nb)

    def end_epoch(self) -> None:
        """Forward the end of an epoch to the wrapped method."""
        self.inner.end_epoch()

    def state_dict(self) -> dict[str, Any]:
        """The wrapped method's state."""
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the wrapped method's state."""
        self.inner.load_state_dict(state)

    def report(self) -> dict[str, Any]:
        """JSON-ready observations (per-step series rounded to 6 significant digits)."""
        out: dict[str, Any] = {
            "steps": len(self.step_seconds),
            "step_seconds_mean": _mean(self.step_seconds),
            "step_seconds_total": float(sum(self.step_seconds)),
            "step_cpu_seconds_mean": _mean(self.step_cpu),
            # from the first step's start to the last step's end: the training loop (forward
            # passes, data, steps, anything the trainer does in between)
            "loop_cpu_seconds": (
                None if self.span[0] is None else float(self.span[2] - self.span[0])
            ),
            "loop_wall_seconds": (
                None if self.span[1] is None else float(self.span[3] - self.span[1])
            ),
            "solves": len(self.solve_seconds),
            "solve_seconds_mean": _mean(self.solve_seconds),
            "solve_seconds_median": (
                float(np.median(self.solve_seconds)) if self.solve_seconds else None
            ),
            "statuses": dict(sorted(self.statuses.items())),
            "residual_median": float(np.median(self.residuals)) if self.residuals else None,
            "residual_max": float(np.max(self.residuals)) if self.residuals else None,
        }
        if self.diagnostics:
            out["cos_shared"] = [_r6(x) for x in self.cos_shared]
            out["cos_task"] = [_r6(x) for x in self.cos_task]
            out["task_grad_cos"] = [_r6(x) for x in self.task_grad_cos]
        return out


def _pub_diag_keys(method: Any) -> set[str]:
    opt = method.opt
    if opt is not None and getattr(opt, "diagnostics", False):
        return {"cos_shared", "cos_task"}
    return set()


def _unique(params: Iterable[Any], seen: set[int]) -> list[Any]:
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _grad_update_cos(params: Sequence[Any], before: Sequence[Any] | None) -> float | None:
    """cos(∇, θ_before − θ_after) over a list of parameters (float64 sums)."""
    if not params or before is None:
        return None
    dot = na = nb = 0.0
    have = False
    for p, b in zip(params, before):
        if p.grad is None:
            continue
        have = True
        g = p.grad.detach().double()
        u = (b - p.detach()).double()
        dot += float((g * u).sum())
        na += float((g * g).sum())
        nb += float((u * u).sum())
    return _cos(dot, na, nb) if have else None


def _finite_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _r6(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


#: ``train_fn(recipe_dict, run_dir, *, source, observe) -> (summary, observations)``
TrainFn = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


def train_observed(
    recipe: dict[str, Any], run_dir: str | Path, *, source: str, observe: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one run with an :class:`ObservedMethod`; return (summary, observations)."""
    from mtopt.config import recipe_from_dict
    from mtopt.train.build import build_components
    from mtopt.train.trainer import Trainer

    rec = recipe_from_dict(recipe, source)
    import torch

    threads = torch.get_num_threads()
    if rec.train.threads is not None:
        torch.set_num_threads(rec.train.threads)
    try:
        dataset, model, method = build_components(rec, rec.train.device, source)
    finally:
        torch.set_num_threads(threads)
    obs = ObservedMethod(method, model, diagnostics=observe == "diagnostics")
    trainer = Trainer(rec, run_dir, source=source, components=(dataset, model, obs))
    summary = trainer.run(overwrite=True)
    return summary, obs.report()
