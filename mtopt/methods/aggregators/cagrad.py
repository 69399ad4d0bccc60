"""CAGrad: conflict-averse gradient descent, solved through its dual on the Gram matrix.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021. The primal (eq. 3) looks for the update in a ball around the average gradient
``g₀ = (1/n) Σ gᵢ`` that maximises the worst task's decrease::

    max_d  minᵢ gᵢᵀd    s.t.  ‖d − g₀‖ ≤ c ‖g₀‖ .

Its dual (Sec. 3.2) is the n-dimensional convex problem

    min_{w ∈ Δ}  F(w) = g_wᵀ g₀ + √φ ‖g_w‖,     g_w = Σ wᵢ gᵢ,  φ = c² ‖g₀‖²,

i.e. ``F(w) = wᵀ G 1/n + c ‖g₀‖ √(wᵀ G w)`` on the Gram matrix only, and the primal solution is
``d* = g₀ + (√φ / ‖g_w*‖) g_w*``. We solve the dual with SLSQP (analytic gradient, on
``G / max diag G``, which leaves w unchanged), as the authors do, but to tight tolerances.

Output scaling (the authors' code, default ``rescale=1``, ``c = 0.4``): the returned vector is

    n · d* / (1 + c²)          (rescale=1, default)
    n · d*                     (rescale=0)
    n · d* / (1 + c)           (rescale=2)

the factor ``n`` being the authors' "match the sum loss" (so with ``c = 0`` CAGrad returns
``Σ gᵢ``, exactly LS). If ``g_w* = 0`` (0 in the convex hull, a Pareto-stationary point) the
ball term is dropped and ``d* = g₀`` (the authors add 1e-8 to ‖g_w‖, which has this effect
only when g_w* is exactly 0); numerically we treat ``‖g_w*‖ ≤ 1e-6 maxᵢ‖gᵢ‖`` as 0 and
report ``last_info["stationary"]``. There the primal optimum is not unique (its value is 0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator
from mtopt.methods.linalg import combine, gram64
from mtopt.weightings.cagrad import STATIONARY_RTOL, cagrad_dual, cagrad_weights

__all__ = ["STATIONARY_RTOL", "CAGrad", "cagrad_dual"]


class CAGrad(Aggregator):
    """CAGrad (Liu et al., NeurIPS 2021, eq. 3 and its dual); see the module docstring.

    Args:
        c: radius of the ball, relative to ‖g₀‖ (paper / authors' default 0.4).
        rescale: 0, 1 (default) or 2, the authors' output rescaling.
    """

    name = "cagrad"

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        super().__init__()
        if not (math.isfinite(float(c)) and float(c) >= 0):
            raise InputError(f"method.c: must be a finite number ≥ 0, got {c!r}")
        if int(rescale) not in (0, 1, 2):
            raise InputError(f"method.rescale: must be 0, 1 or 2, got {rescale!r}")
        self.c = float(c)
        self.rescale = int(rescale)

    def coefficients(self, G: np.ndarray) -> np.ndarray:
        """Coefficients ``β`` with output ``= Σ βᵢ gᵢ`` (dual weights stored in last_info)."""
        beta, info = cagrad_weights(G, self.c, self.rescale)
        self.last_info.update(info)
        return beta

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, None]:
        return combine(self.coefficients(gram64(J)), J), None
