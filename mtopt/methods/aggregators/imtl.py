"""IMTL-G: the aggregated gradient has equal projections on every unit task gradient.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
ICLR 2021, Sec. 3.2 (gradient balance), closed form of eq. (7)::

    find α with Σ αᵢ = 1 and  g·uᵢ = g·uⱼ  ∀ i, j,   g = Σ αᵢ gᵢ,  uᵢ = gᵢ/‖gᵢ‖ .

The paper writes the solution as ``α₂:ₙ = g₁Uᵀ(DUᵀ)⁻¹, α₁ = 1 − Σ α₂:ₙ`` with rows
``D = g₁ − gᵢ``, ``U = u₁ − uᵢ``. On the Gram matrix the same n linear conditions read

    sᵢ (Gα)ᵢ − s₁ (Gα)₁ = 0   (i = 2..n),     1ᵀα = 1,        sᵢ = 1/√Gᵢᵢ ,

which we solve in float64 (least squares if singular, e.g. linearly dependent gradients).
Tasks with a zero gradient have no direction; they get αᵢ = 0 and the rest is solved without
them. α may be negative (the paper does not constrain its sign).

Output scaling: ``d = Σ αᵢ gᵢ`` with ``Σ αᵢ = 1``.
"""

from __future__ import annotations

from typing import Any

import torch

from mtopt.methods.aggregators.base import Aggregator, as_weights
from mtopt.methods.linalg import combine, gram64
from mtopt.weightings.imtl_g import ZERO_RTOL, imtl_g_weights

__all__ = ["IMTLG", "ZERO_RTOL", "imtl_g_weights"]


class IMTLG(Aggregator):
    """IMTL-G (Liu et al., ICLR 2021, eq. 7): equal projections on the unit task gradients.

    Returns ``(Σ αᵢ gᵢ, α)`` with ``Σ α = 1``.
    """

    name = "imtl_g"
    has_weights = True

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = imtl_g_weights(gram64(J))
        return combine(alpha, J), as_weights(alpha, J)
