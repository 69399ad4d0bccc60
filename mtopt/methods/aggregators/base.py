"""Shared pieces of the pure aggregators: the input check and the base class.

The float64 Gram and the combination live in :mod:`mtopt.methods.linalg` (re-exported here).

An aggregator maps a task Jacobian ``J`` (``Tensor[n, d]``, row i = task i's gradient) to one
update direction ``d`` (``Tensor[d]``) and, where its paper defines them, task weights ``w``
with ``d = Σᵢ wᵢ gᵢ``. Most aggregators only need the ``n×n`` Gram matrix ``G = J Jᵀ``, formed
once per call in float64 (torchjd's split of a *weighting* on the Gramian from the
*aggregation* ``Jᵀw``); they return ``d = cᵀ J`` for a coefficient vector ``c`` computed in
float64. Every call records what it did in :attr:`Aggregator.last_info` (plain numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.linalg import combine, gram64


def check_grads(grads: Any) -> torch.Tensor:
    """Validate ``grads`` (a 2-D float tensor, n ≥ 1 rows, finite) and return it detached."""
    if not isinstance(grads, torch.Tensor):
        raise InputError(
            f"grads: expected a torch.Tensor of shape [n_tasks, d], got {type(grads).__name__}"
        )
    if grads.ndim != 2 or grads.shape[0] < 1:
        raise InputError(
            f"grads: expected shape [n_tasks, d] with n_tasks ≥ 1, got {tuple(grads.shape)}"
        )
    if not torch.is_floating_point(grads):
        raise InputError(f"grads: expected a floating-point tensor, got dtype {grads.dtype}")
    J = grads.detach()
    # fast path: the sum is finite unless some entry is NaN/Inf (or the sum overflows, in
    # which case the full check below decides)
    if not bool(torch.isfinite(J.sum())) and not bool(torch.isfinite(J).all()):
        raise InputError("grads: contains NaN or Inf; check the task losses for non-finite values")
    return J


class Aggregator:
    """Base class of pure aggregators: ``agg(grads, generator=None) -> (vector, weights|None)``.

    Subclasses implement :meth:`aggregate` on a validated Jacobian. ``weights`` is a float64
    tensor where the method's paper defines task weights, else ``None``. Stochastic aggregators
    draw only from the given ``torch.Generator`` (a fresh unseeded one if ``None``).
    """

    #: registered short name
    name: str = ""
    #: draws random numbers (uses the ``generator`` argument)
    stochastic: bool = False
    #: the returned weights are defined by the method's paper
    has_weights: bool = False

    def __init__(self) -> None:
        self.last_info: dict[str, Any] = {}

    def __call__(
        self,
        grads: torch.Tensor,
        generator: torch.Generator | None = None,
        losses: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        J = check_grads(grads)
        self.last_info = {}
        return self.aggregate(J, generator=generator, losses=losses)

    def aggregate(
        self,
        J: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        losses: Any = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Aggregate a validated Jacobian (see the class docstring)."""
        raise NotImplementedError


def as_weights(w: np.ndarray, J: torch.Tensor) -> torch.Tensor:
    """Weights as a float64 tensor on J's device."""
    return torch.as_tensor(np.asarray(w, dtype=np.float64), device=J.device)


__all__ = ["Aggregator", "as_weights", "check_grads", "combine", "gram64"]
