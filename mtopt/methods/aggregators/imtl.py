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

import numpy as np
import torch

from mtopt.methods.aggregators.base import Aggregator, as_weights
from mtopt.methods.linalg import combine, gram64

#: a task whose squared gradient norm is below this fraction of the largest counts as zero
ZERO_RTOL = 1e-24


def imtl_g_weights(G: np.ndarray) -> np.ndarray:
    """IMTL-G's α for the Gram matrix ``G`` (see the module docstring)."""
    n = G.shape[0]
    d = np.diag(G)
    big = float(d.max()) if n else 0.0
    alpha = np.zeros(n)
    if big <= 0:
        return np.full(n, 1.0 / n)
    live = np.flatnonzero(d > ZERO_RTOL * big)
    if live.size == 1:
        alpha[live[0]] = 1.0
        return alpha
    Gl = G[np.ix_(live, live)]
    s = 1.0 / np.sqrt(np.diag(Gl))
    m = live.size
    A = np.empty((m, m))
    A[:-1] = s[1:, None] * Gl[1:] - s[0] * Gl[0][None, :]
    A[-1] = 1.0
    rhs = np.zeros(m)
    rhs[-1] = 1.0
    try:
        a = np.linalg.solve(A, rhs)
        if not np.all(np.isfinite(a)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        a = np.linalg.lstsq(A, rhs, rcond=None)[0]
    alpha[live] = a
    return alpha


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
