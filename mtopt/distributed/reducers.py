"""Attaching a method to the process group: which gradient reducer averages its gradients
over ranks (the optimiser's hook, the method's per-task hook, or a step pre-hook on its torch
optimisers; see :mod:`mtopt.distributed`)."""

from __future__ import annotations

from typing import Any

import torch

from mtopt.distributed.context import DistContext
from mtopt.errors import RunError


def _torch_optimizers(method: Any) -> list[torch.optim.Optimizer]:
    out: list[torch.optim.Optimizer] = []
    for v in vars(method).values():
        if isinstance(v, torch.optim.Optimizer) and all(v is not o for o in out):
            out.append(v)
    return out


def attach(method: Any, ctx: DistContext) -> str:
    """Make ``method`` average its gradients over ranks (see the module docstring).

    Returns how: ``"update-level"``, ``"gradient-level"`` or ``"loss-level"``.
    """
    if not ctx.enabled:
        return "single"
    if getattr(method, "router", None):
        raise RunError(
            f"method {type(method).__name__}: its gradient router reads each process's own "
            "gradients before they are averaged; it cannot be trained with several processes"
        )
    opt = getattr(method, "opt", None)
    if opt is not None and hasattr(opt, "grad_reducer"):  # PUB / AdaTask
        opt.grad_reducer = ctx.grad_reducer
        if hasattr(opt, "row_reducer"):  # row-wise embedding tables: all-gather touched rows
            opt.row_reducer = ctx.reduce_rows
        return "update-level"
    from mtopt.optim.multitask import MultiTaskUpdate

    if isinstance(opt, MultiTaskUpdate):  # an mtopt.optim without the hook
        raise RunError(
            f"method {type(method).__name__}: this version of mtopt.optim.PUB has no "
            "grad_reducer hook; it cannot be trained with several processes"
        )
    kind = "loss-level"
    if hasattr(method, "grad_reducer"):  # GradientMethod
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
