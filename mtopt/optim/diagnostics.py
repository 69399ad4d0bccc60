"""What a multi-task step did (:class:`LastStep`) and the paper's diagnostics.

Yuan, Cai & Dong, ICDM 2024, §III: cos(gradient, update) on the shared parameters
(``Sim_share``) and on the task-specific ones (``Sim_task``), and their Diff, eq. (1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class LastStep:
    """What the latest :meth:`PUB.step` did (``opt.last``)."""

    step: int = 0
    #: α applied to the shared parameters this step (None: shared step skipped)
    alpha: list[float] | None = None
    #: a solve was attempted this step
    solved: bool = False
    #: solver status of this step's solve; ``reused`` between solves; ``fixed`` (AdaTask);
    #: ``nonfinite`` when the step was skipped for NaN/Inf
    status: str = "none"
    #: residual ``maxᵢ|αᵢ(Gα)ᵢ − 1|`` of the latest solve on the G it solved (scaled if frobenius)
    residual: float | None = None
    solve_seconds: float = 0.0
    gram_seconds: float = 0.0
    #: wall time of this step's backward passes and of everything after them (PUB's own work)
    backward_seconds: float = 0.0
    update_seconds: float = 0.0
    iterations: int = 0
    #: ``applied``, ``fallback-previous``, ``skipped`` (fallback without α) or ``nonfinite``
    action: str = "none"
    #: the Gram matrix the solver saw (n×n, float64), when a solve was attempted
    gram: list[list[float]] | None = None
    #: ‖DᵀD‖_F of the raw Gram matrix (the frobenius scale), when a solve was attempted
    gram_fro: float | None = None
    #: ``per-task`` (n backward passes, Algorithm 1) or ``weighted`` (one backward between
    #: solves, ``between_solves="weighted"``, :mod:`mtopt.optim.weighted`)
    path: str = "per-task"
    #: per-group balancing (``groups``): each group's α (k×n) and solve seconds; ``alpha`` is
    #: then their mean weighted by group size
    group_alpha: list[list[float]] | None = None
    group_solve_seconds: list[float] | None = None
    #: optional diagnostics (``cos_shared``, ``cos_task``, ``diff``), see ``diagnostics=True``
    diagnostics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cos(dot: float, na: float, nb: float) -> float | None:
    den = na * nb
    return dot / den if den > 0 and math.isfinite(den) else None


def diff_metric(sim_task: float | None, sim_share: float | None) -> float | None:
    """Diff, Yuan et al. (ICDM 2024) eq. (1): ``2|Sim_task − Sim_share| / |Sim_task + Sim_share|``.

    ``None`` when an input is missing or the denominator is 0.
    """
    if sim_task is None or sim_share is None:
        return None
    den = abs(sim_task + sim_share)
    return 2.0 * abs(sim_task - sim_share) / den if den > 0 else None


def shared_cosine(g: torch.Tensor, u: torch.Tensor) -> float | None:
    """``Sim_share``: cos(the α-weighted gradient ``g``, the joint update ``u``), flat ``[d]``."""
    return _cos(float(g @ u), float(g.norm()), float(u.norm()))


def task_cosine(
    params: list[torch.Tensor],
    grads: list[torch.Tensor | None],
    before: list[torch.Tensor],
) -> float | None:
    """``Sim_task``: cos(gradient, descent update ``θ_old − θ_new``) over the task parameters."""
    dot = na = nb = 0.0
    for p, g, b in zip(params, grads, before):
        if g is None:
            continue
        upd = b - p.detach()  # descent update θ_old − θ_new
        dot += float((g * upd).sum())
        na += float((g * g).sum())
        nb += float((upd * upd).sum())
    return _cos(dot, math.sqrt(na), math.sqrt(nb))


def step_diagnostics(cos_shared: float | None, cos_task: float | None) -> dict[str, float | None]:
    """``opt.last.diagnostics``: both cosines and Diff (paper §III, eq. (1))."""
    return {
        "cos_shared": cos_shared,
        "cos_task": cos_task,
        "diff": diff_metric(cos_task, cos_shared),
    }


def diagnose(
    ghat: torch.Tensor | None,
    u: torch.Tensor,
    task_params: list[torch.Tensor],
    task_grads: list[torch.Tensor | None],
    task_before: list[torch.Tensor] | None,
) -> dict[str, float | None]:
    """One step's diagnostics: cos(ĝ, u) on the shared parameters (None without a shared step),
    cos(gradient, update) on the task parameters (None without them) and Diff, eq. (1)."""
    cs = None if ghat is None else shared_cosine(ghat, u)
    ct = None if task_before is None else task_cosine(task_params, task_grads, task_before)
    return step_diagnostics(cs, ct)
