"""Attaching a method to the process group: which gradient reducer averages its gradients
over ranks (the optimiser's hook, the method's per-task hook, or a step pre-hook on its torch
optimisers; see :mod:`mtopt.distributed`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from mtopt.distributed.context import DistContext
from mtopt.errors import RunError

if TYPE_CHECKING:  # the methods layer sits above this one: annotation only
    from mtopt.methods.base import Method


def _torch_optimizers(method: Any) -> list[torch.optim.Optimizer]:
    out: list[torch.optim.Optimizer] = []
    for v in vars(method).values():
        if isinstance(v, torch.optim.Optimizer) and all(v is not o for o in out):
            out.append(v)
    return out


def attach(method: Method, ctx: DistContext) -> str:
    """Make ``method`` average its gradients over ranks (see :mod:`mtopt.distributed`).

    Reads the hooks :class:`~mtopt.methods.base.Method` declares (``single_process_only``,
    ``opt``, ``reduces_task_gradients``, ``grad_reducer``). Returns how: ``"update-level"``,
    ``"gradient-level"`` or ``"loss-level"`` (``"single"`` with one process: nothing done).
    """
    if not ctx.enabled:
        return "single"
    if method.single_process_only:  # DRGrad's router
        raise RunError(
            f"method {type(method).__name__}: it reads each process's own gradients before they "
            "are averaged (DRGrad's gradient router); it cannot be trained with several processes"
        )
    from mtopt.optim.multitask import MultiTaskUpdate

    opt = method.opt
    if isinstance(opt, MultiTaskUpdate):  # PUB / AdaTask: the optimiser's own hooks
        opt.grad_reducer = ctx.grad_reducer
        opt.row_reducer = ctx.reduce_rows  # row-wise embedding tables: all-gather touched rows
        return "update-level"
    kind = "loss-level"
    if method.reduces_task_gradients:  # GradientMethod: averages J and T itself
        method.grad_reducer = ctx.grad_reducer
        kind = "gradient-level"
    opts = _torch_optimizers(method)
    if not opts:
        raise RunError(
            f"method {type(method).__name__}: no torch optimizer or grad_reducer hook found; "
            "it cannot be trained with several processes"
        )
    for o in opts:

        def pre_hook(o_: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if ctx.reduced:  # this step's gradients came from reduced per-task gradients
                return
            ctx.reduce_grads_([p for g in o_.param_groups for p in g["params"]])

        o.register_step_pre_hook(pre_hook)
    return kind
