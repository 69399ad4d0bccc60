"""Construction-time checks of the multi-task optimizers: hyperparameters and the split of the
parameters into shared (flat ``θ`` of Algorithm 1, Yuan, Cai & Dong, ICDM 2024), row-wise
tables, plain and task-specific groups. Errors name the constructor's parameters."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.optim.grads import BACKWARDS
from mtopt.optim.rules import BaseRule, check_options
from mtopt.optim.umm import UMM


def check_number(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name}: must be a finite number ≥ 0, got {value!r}")


def check_hyperparameters(
    rule: BaseRule,
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float | None,
    weight_decay: float,
    base_options: dict[str, Any] | None,
    backward: str,
) -> dict[str, Any]:
    """The validated param-group defaults (``lr``, ``betas``, ``eps``, ``weight_decay`` and the
    rule's ``base_options`` with torch's defaults filled); ``eps=None``: the rule's default."""
    opts = check_options(rule, base_options)
    eps = rule.default_eps if eps is None else eps
    check_number("lr", lr)
    check_number("eps", eps)
    if eps <= 0:
        raise InputError(
            "eps: must be > 0 (with eps = 0 a coordinate whose gradient and moments are 0 "
            "gets 0/0 = NaN in the base rule's step); use e.g. 1e-30 to study eps effects"
        )
    check_number("weight_decay", weight_decay)
    try:
        b1, b2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise InputError(f"betas: expected two numbers, got {betas!r}") from None
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise InputError(f"betas: each must be in [0, 1), got {betas!r}")
    if backward not in BACKWARDS:
        raise InputError(f"backward: must be one of {', '.join(BACKWARDS)}, got {backward!r}")
    return dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, **opts)


@dataclass
class ParamSplit:
    """Trainable parameters by role: ``shared`` (dense, in D), ``rows`` (row-wise tables, in D)
    and ``tasks`` (one list per task; ``plain`` tensors join ``tasks[0]``)."""

    shared: list[torch.Tensor]
    rows: list[torch.Tensor]
    tasks: list[list[torch.Tensor]]


def split_params(
    shared_params: Iterable[torch.Tensor],
    task_params: Sequence[Iterable[torch.Tensor]],
    *,
    plain: Iterable[torch.Tensor],
    row_wise: Iterable[torch.Tensor],
    umms: list[UMM],
    backward: str,
) -> ParamSplit:
    """Keep parameters that require grad, check the roles are disjoint, move ``plain`` tensors
    to the task-specific step and ``row_wise`` tables out of the dense D."""
    if isinstance(task_params, torch.Tensor) or not isinstance(task_params, Sequence):
        raise InputError("task_params: pass a list with one iterable of parameters per task")
    given, row_wise = list(shared_params), list(row_wise)
    shared = [p for p in given if p.requires_grad]
    if given and not shared:
        raise InputError(
            f"shared_params: all {len(given)} shared parameters are frozen "
            "(requires_grad=False), so there is nothing to balance; unfreeze at least one "
            "shared parameter, or train the task-specific parameters with a plain optimizer"
        )
    tasks = [[p for p in ps if p.requires_grad] for ps in task_params]
    if not tasks:
        raise InputError("task_params: need one entry (possibly empty) per task, got none")
    pl = {id(p) for p in plain}
    if pl:  # out of D: the plain base step on ∇Σᵢ Lᵢ, as the task-specific parameters
        moved = [p for p in shared if id(p) in pl]
        if len(moved) != len(pl):
            raise InputError("plain: every tensor must be one of shared_params")
        shared = [p for p in shared if id(p) not in pl]
        tasks[0] = tasks[0] + moved
    seen: dict[int, str] = {id(p): "shared_params" for p in shared}
    if len(seen) != len(shared):
        raise InputError("shared_params: a parameter is listed twice")
    for i, ps in enumerate(tasks):
        for p in ps:
            where = seen.get(id(p))
            if where is not None:
                raise InputError(
                    f"task_params[{i}]: a parameter is also in {where}; shared and task "
                    "parameters must be disjoint (take the split from the model)"
                )
            seen[id(p)] = f"task_params[{i}]"
    rw = {id(p) for p in row_wise}
    rows = [p for p in shared if id(p) in rw]
    if rows:
        if len(rows) != len(rw):
            raise InputError("row_wise: every tensor must be one of shared_params")
        if umms or backward != "loop" or any(p.dim() != 2 for p in rows):
            raise InputError("row_wise: needs 2-D tables (embeddings), backward='loop' and no UMM")
        shared = [p for p in shared if id(p) not in rw]
    return ParamSplit(shared=shared, rows=rows, tasks=tasks)
