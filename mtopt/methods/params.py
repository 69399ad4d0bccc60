"""Parameter plumbing shared by the methods: parameter split, per-task gradients, ``.grad`` I/O.

Parameter split (DESIGN §1): *shared* parameters are ``model.shared_parameters()``; every other
trainable parameter of the model (the towers, ``model.task_parameters(i)``) is *task-specific*.
Gradient-level methods aggregate only on the shared parameters; task-specific parameters take
the plain gradient of ``Σᵢ Lᵢ`` (for a tower used by one task this is that task's gradient).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mtopt.models.base import MultiTaskModel


def split_parameters(model: MultiTaskModel) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(shared, task_specific)`` trainable parameters, each without duplicates."""
    shared: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in model.shared_parameters():
        if p.requires_grad and id(p) not in seen:
            shared.append(p)
            seen.add(id(p))
    others = []
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            others.append(p)
            seen.add(id(p))
    return shared, others


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameterless model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate flattened gradients (``None`` -> zeros) into one vector."""
    if not params:
        return torch.zeros(0)
    parts = [
        (g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)
    ]
    return torch.cat(parts)


def task_jacobians(
    losses: Sequence[torch.Tensor],
    shared: Sequence[torch.Tensor],
    others: Sequence[torch.Tensor],
    retain_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task gradients: ``(J [n, d_shared], T [n, d_others])``, one backward per task.

    Row i of ``J`` is ``∇_shared Lᵢ``, row i of ``T`` is ``∇_others Lᵢ`` (zeros where unused).
    ``retain_graph`` keeps the graph after the last task (for a later backward).
    """
    params = list(shared) + list(others)
    ns = len(shared)
    n = len(losses)
    J_rows, T_rows = [], []
    for i, loss in enumerate(losses):
        gs = torch.autograd.grad(
            loss, params, retain_graph=retain_graph or i < n - 1, allow_unused=True
        )
        J_rows.append(flat(gs[:ns], shared))
        T_rows.append(flat(gs[ns:], others))
    return torch.stack(J_rows), torch.stack(T_rows)


def set_flat_grad(params: Sequence[torch.Tensor], vec: torch.Tensor | None) -> None:
    """Write ``vec`` (flattened, in ``params`` order) into ``p.grad``; ``None`` clears them."""
    if vec is None:
        for p in params:
            p.grad = None
        return
    offset = 0
    for p in params:
        k = p.numel()
        p.grad = vec[offset : offset + k].reshape(p.shape).to(p.dtype).clone()
        offset += k


def set_grads(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]) -> None:
    """``p.grad = g`` (zeros for ``None``)."""
    for p, g in zip(params, grads):
        p.grad = torch.zeros_like(p) if g is None else g.detach().clone()


def clip_(params: Sequence[torch.Tensor], max_norm: float) -> float | None:
    """Clip the joint gradient norm of ``params`` (``torch.nn.utils.clip_grad_norm_``)."""
    ps = [p for p in params if p.grad is not None]
    if max_norm > 0 and ps:
        return float(torch.nn.utils.clip_grad_norm_(ps, max_norm))
    return None


__all__ = [
    "clip_",
    "flat",
    "model_device",
    "set_flat_grad",
    "set_grads",
    "split_parameters",
    "task_jacobians",
]
