"""Shared pieces of the pure aggregators: input checks, the float64 Gram, the combination.

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

#: columns of J per block when accumulating the float64 Gram (bounds the fp64 copy to ~64 MiB)
_GRAM_BLOCK = 1 << 20


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


def gram64(J: torch.Tensor) -> np.ndarray:
    """``G = J Jᵀ`` accumulated in float64, as a symmetric numpy array."""
    n, d = J.shape
    G = torch.zeros(n, n, dtype=torch.float64, device=J.device)
    for start in range(0, max(d, 1), _GRAM_BLOCK):
        block = J[:, start : start + _GRAM_BLOCK].to(torch.float64)
        G += block @ block.T
    A = G.cpu().numpy()
    return 0.5 * (A + A.T)


def combine(coefficients: np.ndarray | torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """``Σᵢ cᵢ gᵢ`` in the dtype of ``J`` (coefficients computed in float64 by the caller)."""
    c = torch.as_tensor(np.asarray(coefficients, dtype=np.float64), device=J.device)
    if J.dtype == torch.float64:
        return c @ J
    return c.to(J.dtype) @ J


def check_losses(losses: Any, n: int, name: str) -> np.ndarray:
    """Task losses as a float64 vector of length ``n`` (for loss-based normalisations)."""
    if losses is None:
        raise InputError(f"{name}: this normalization needs losses=[...] (one value per task)")
    arr = np.asarray(
        [float(x.detach()) if isinstance(x, torch.Tensor) else float(x) for x in losses],
        dtype=np.float64,
    )
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: losses must be {n} finite numbers, got {arr.tolist()}")
    return arr


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
