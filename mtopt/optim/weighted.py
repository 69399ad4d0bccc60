"""PUB's step from one backward between solves (``between_solves="weighted"``).

Yuan, Cai & Dong, ICDM 2024, Algorithm 1 needs the n per-task gradients ``gᵢ`` at every step to
form ``D``. Between two solves α is held fixed, and the shared step ``Σᵢ αᵢ Δᵢ`` depends on the
``gᵢ`` only through the base rule. Write ``S = Σᵢ αᵢ`` and ``ḡ = Σᵢ (αᵢ/S) gᵢ`` — the gradient of
one loss, ``Σᵢ (αᵢ/S) Lᵢ``, i.e. **one backward pass**. For every base rule here the numerator of
``Δᵢ`` is affine in ``gᵢ`` (Adam's ``β₁m + (1−β₁)gᵢ``, RMSProp's ``gᵢ``), so

    Σᵢ αᵢ Δᵢ  =  S · Δ(ḡ)   exactly, if every task's denominator is replaced by the one of ḡ

(Adam: ``√((β₂v + (1−β₂)ḡ²)/(1−β₂ᵗ)) + eps``; RMSProp: ``√(ρv + (1−ρ)ḡ²) + eps``; likewise with
``paper_exact``). The approximation is only there: task i's denominator holds ``(1−β₂)gᵢ²``
where the weighted step holds ``(1−β₂)ḡ²``. The moments are then fed ``S·ḡ = Σᵢαᵢgᵢ`` — exactly
what the per-task path feeds. So the weighted step is the per-task machinery run on **one
pseudo-task** with gradient ``ḡ`` (+ ``wd·θ``) and weight ``S``: the same rule code, row-wise
tables, weight decay, finiteness checks and moment feed.

Where it is exact: one task (``ḡ = g₁`` bit for bit, since ``α₁/S = 1``); all tasks with the
same gradient; β₂ → 1 with filled moments (the new gradient's weight in the denominator → 0).

**The bound.** The newest gradient's weight in the second moment, relative to all the
gradients it holds, is ``w_t = (1−β₂)/(1−β₂ᵗ)`` (Adam; RMSProp with ρ; its moment starts at 0
too). It is 1 at the first step and ``1−β₂`` in steady state. A step takes the weighted path
only when (a) no solve is due (solve steps need D), (b) an α is known, and (c)
``w_t ≤ weighted_tol`` — so early training is always exact. The default 0.02 means: Adam
(β₂ = 0.999) exact for the first 51 steps, RMSProp (ρ = 0.99) for the first 69 (docs/pub.md
has the measured error by training phase).

**Refused** (an :class:`~mtopt.errors.InputError` naming the parameter):

* AdaGrad: its accumulator never forgets, so ``w_t`` is not bounded by the step count (a rarely
  seen coordinate's newest gradient dominates its sum forever);
* any UMM: AdaTask keeps per-task moments, Clippy clips each task's update;
* ``diagnostics=True``: the diagnostics read the per-task updates.

Task-specific parameters: the one backward gives task j's parameters ``(αⱼ/S)∇Lⱼ`` — only loss j
reaches them (checked once, on the first weighted step of a process, by an autograd
reachability probe) — and they are rescaled by ``S/αⱼ`` to ``∇Lⱼ``, the gradient of ``Σᵢ Lᵢ``
they take on the per-task path (equal up to rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.optim.flat import FlatLayout
from mtopt.optim.grads import Rows, touched_rows
from mtopt.optim.rules import BaseRule
from mtopt.optim.umm import UMM

BETWEEN_SOLVES = ("per-task", "weighted")
#: default ``weighted_tol``: the largest newest-gradient weight ``w_t`` a weighted step accepts
DEFAULT_WEIGHTED_TOL = 0.02


def check_between_solves(
    between_solves: str,
    weighted_tol: float,
    rule: BaseRule,
    umms: list[UMM],
    diagnostics: bool,
) -> bool:
    """Validate ``between_solves`` / ``weighted_tol``; True for the weighted path."""
    if between_solves not in BETWEEN_SOLVES:
        raise InputError(
            f"between_solves: must be one of {', '.join(BETWEEN_SOLVES)}, got {between_solves!r}"
        )
    tol = weighted_tol
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol <= 1:
        raise InputError(f"weighted_tol: must be a number in [0, 1], got {weighted_tol!r}")
    if between_solves == "per-task":
        return False
    if rule.name == "adagrad":
        raise InputError(
            "between_solves: 'weighted' is refused with base 'adagrad': its accumulator never "
            "forgets, so the newest gradient's weight in it is not bounded by the step count; "
            "use between_solves='per-task' (or base 'adam' / 'rmsprop')"
        )
    if umms:
        names = ", ".join(u.name for u in umms)
        raise InputError(
            f"between_solves: 'weighted' is refused with umm {names}: AdaTask keeps per-task "
            "moments and Clippy clips each task's update, both need the per-task gradients; "
            "use between_solves='per-task'"
        )
    if diagnostics:
        raise InputError(
            "between_solves: 'weighted' is refused with diagnostics=True (the diagnostics read "
            "the per-task updates); use between_solves='per-task'"
        )
    return True


def newest_weight(rule: BaseRule, t: int, group: dict[str, Any]) -> float:
    """``w_t = (1−β)/(1−βᵗ)``: step t's gradient's share of the second moment (β = β₂ for Adam,
    ρ for RMSProp), 1 at ``t = 1``, ``1−β`` in steady state."""
    beta = float(group["betas"][1]) if rule.name == "adam" else float(group["alpha"])
    if beta == 0.0:
        return 1.0
    return (1.0 - beta) / (1.0 - beta**t)


def loss_weights(alpha: np.ndarray) -> tuple[list[float], float] | None:
    """``(αᵢ/S, S)`` for the weighted loss, or None when α cannot carry a weighted step (a
    non-positive, non-finite or vanishing weight: its task-parameter rescaling would blow up)."""
    a = np.asarray(alpha, dtype=np.float64)
    S = float(np.sum(a))
    if not (np.all(np.isfinite(a)) and np.all(a > 0) and np.isfinite(S)):
        return None
    w = a / S
    if float(w.min()) < 1e-8:
        return None
    return [float(x) for x in w], S


def only_own_loss(losses: list[torch.Tensor], task_groups: list[list[torch.Tensor]]) -> None:
    """Raise when another task's loss moves a task's parameters (autograd probe: one
    ``autograd.grad`` per loss on the other tasks' parameters, graph retained; a gradient of
    exact zeros passes — a head read through a slice of stacked logits gets one)."""
    for i, L in enumerate(losses):
        if not L.requires_grad:
            continue
        others = [(j, p) for j, ps in enumerate(task_groups) if j != i for p in ps]
        if not others:
            continue
        gs = torch.autograd.grad(L, [p for _, p in others], retain_graph=True, allow_unused=True)
        for (j, _), g in zip(others, gs):
            if g is not None and bool(g.ne(0).any()):  # slices of a stacked output give 0s
                raise InputError(
                    f"between_solves: 'weighted' needs task_params[{j}] reached by task {j}'s "
                    f"loss only, but task {i}'s loss reaches them too (list such parameters "
                    "in shared_params); use between_solves='per-task'"
                )


def weighted_grads(
    losses: list[torch.Tensor],
    weights: list[float],
    layout: FlatLayout,
    out: torch.Tensor,
    tables: list[torch.Tensor],
    task_params: list[torch.Tensor],
    owner: list[int],
) -> tuple[list[torch.Tensor | None], list[list[Rows]]]:
    """One backward of ``Σᵢ wᵢ Lᵢ``: ``ḡ`` of the flat shared parameters into ``out`` (``[d]``),
    the touched rows of each row-wise table (one pseudo-task), and each task parameter's
    gradient rescaled by ``1/w_owner`` (``∇L_owner``; None when unreached)."""
    live = [i for i, L in enumerate(losses) if L.requires_grad]
    empty = [(p.new_zeros(0, dtype=torch.long), p.new_zeros(0, p.shape[1])) for p in tables]
    if not live:
        out.zero_()
        return [None] * len(task_params), [list(empty)]
    total = losses[live[0]] * weights[live[0]]
    for i in live[1:]:
        total = total + losses[i] * weights[i]
    shared = layout.params
    S = len(shared)
    gs = torch.autograd.grad(total, shared + tables + task_params, allow_unused=True)
    layout.gather(gs[:S], out)
    rows = list(empty)
    for k, g in enumerate(gs[S : S + len(tables)]):
        if g is not None:
            rows[k] = touched_rows(g)
    tg: list[torch.Tensor | None] = []
    for j, g in enumerate(gs[S + len(tables) :]):
        w = weights[owner[j]]
        tg.append(None if g is None else (g if w == 1.0 else g / w))
    return tg, [rows]
