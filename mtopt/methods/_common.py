"""Helpers shared by the baseline methods: parameter split, per-task gradients, RNG state.

Parameter split (DESIGN §1): *shared* parameters are ``model.shared_parameters()``; every other
trainable parameter of the model (the towers, ``model.task_parameters(i)``) is *task-specific*.
Gradient-level methods aggregate only on the shared parameters; task-specific parameters take
the plain gradient of ``Σᵢ Lᵢ`` (for a tower used by one task this is that task's gradient).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.errors import InputError, RunError
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


def check_losses(losses: Sequence[torch.Tensor], n_tasks: int) -> list[torch.Tensor]:
    """``losses`` as a list of n scalar tensors; a non-finite loss is a :class:`RunError`."""
    out = list(losses)
    if len(out) != n_tasks:
        raise InputError(f"method.step: expected {n_tasks} task losses, got {len(out)}")
    for i, loss in enumerate(out):
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise InputError(f"method.step: task loss {i} must be a scalar tensor")
        v = float(loss.detach())
        if not math.isfinite(v):
            raise RunError(f"task {i} loss is {v} (non-finite); lower the learning rate")
    return [loss.reshape(()) for loss in out]


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


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the method's own RNG)."""
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise InputError(f"method.seed: must be an integer, got {seed!r}") from None
    return torch.Generator().manual_seed(s)


def numeric_info(info: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The plain-number entries of an aggregator's ``last_info`` (for ``StepInfo.extra``)."""
    out: dict[str, float] = {}
    for k, v in info.items():
        if isinstance(v, bool):
            out[prefix + k] = float(v)
        elif isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[prefix + k] = float(v)
    return out


def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """``float(value)``, which must be finite and > 0 (or ≥ 0); else an :class:`InputError`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"method.{name}: must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise InputError(f"method.{name}: must be finite and {bound}, got {value!r}")
    return v


class StatefulStepMixin:
    """Shared by the gradient-level and loss-weighting base classes: the :class:`StepInfo`
    of a step and bit-for-bit resumability (optimiser state, step count, RNG state, plus a
    subclass's own state through ``_extra_state`` / ``_load_extra_state``).

    Expects ``self.opt`` (a torch optimiser), ``self.n_steps``, ``self.generator`` (a
    ``torch.Generator``) and ``self.has_weights``.
    """

    opt: Any
    n_steps: int
    generator: Any
    has_weights: bool

    def _info(
        self,
        ls: Sequence[Any],
        w: Sequence[float] | None,
        extra: dict[str, float],
        **kw: Any,
    ) -> Any:
        from mtopt.methods.base import StepInfo

        vals = [float(x.detach()) for x in ls]
        weights = [float(x) for x in w] if (self.has_weights and w is not None) else None
        return StepInfo(loss=float(sum(vals)), task_losses=vals, weights=weights, extra=extra, **kw)

    def state_dict(self) -> dict[str, Any]:
        """Optimiser state, step count, RNG state and subclass state."""
        return {
            "opt": self.opt.state_dict(),
            "n_steps": self.n_steps,
            "generator": self.generator.get_state(),
            "method": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.n_steps = int(state["n_steps"])
        self.generator.set_state(state["generator"])
        self._load_extra_state(state.get("method", {}))

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass


def log_scale_group(model: Any, lr: float | None) -> tuple[Any, dict[str, Any]]:
    """Learned per-task log-scales ``s`` (init 0) and their optimiser param group (no weight
    decay; ``lr`` defaults to the base lr), as IMTL-L and hybrid IMTL use them."""
    import torch

    scales = torch.zeros(model.n_tasks, requires_grad=True, device=model_device(model))
    group: dict[str, Any] = {"params": [scales], "weight_decay": 0.0}
    if lr is not None:
        group["lr"] = positive("lr", lr)
    return scales, group
