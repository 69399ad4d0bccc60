"""IMTL-G's weighting: the combination has equal projections on every unit task vector.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
ICLR 2021, Sec. 3.2, closed form of eq. (7)::

    Σ αᵢ = 1   and   gᵀuᵢ = gᵀuⱼ  ∀ i, j,       g = Σ αᵢ gᵢ,   uᵢ = gᵢ/‖gᵢ‖ ,

on the Gram matrix ``sᵢ(Gα)ᵢ = s₁(Gα)₁`` with ``sᵢ = 1/√Gᵢᵢ`` (moved here verbatim from
:mod:`mtopt.methods.aggregators.imtl`, which imports it). α may be negative; a zero row gets
``αᵢ = 0``. The residual is the spread ``maxᵢ − minᵢ`` of ``sᵢ(Gα)ᵢ`` over the live rows,
relative to ``maxᵢ √Gᵢᵢ``, plus ``|Σα − 1|``.

Scale (update level): ``Σα = 1``, so ``Dα`` is an affine combination of the updates; when they
agree it is about one update long, ~√n shorter than Algorithm 1's ``‖Dα‖ = √n`` (scaled G).
"""

from __future__ import annotations

import numpy as np

from mtopt.weightings.base import Weighting, WeightingResult

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


def imtl_residual(G: np.ndarray, alpha: np.ndarray) -> float:
    """The eq. (7) residual: spread of the projections ``sᵢ(Gα)ᵢ`` on the live rows (relative
    to ``maxᵢ √Gᵢᵢ``) plus ``|Σα − 1|``."""
    d = np.diag(G)
    big = float(d.max())
    if big <= 0:
        return abs(float(alpha.sum()) - 1.0)
    live = np.flatnonzero(d > ZERO_RTOL * big)
    proj = (G @ alpha)[live] / np.sqrt(d[live])
    return float(proj.max() - proj.min()) / np.sqrt(big) + abs(float(alpha.sum()) - 1.0)


class IMTLG(Weighting):
    """IMTL-G (Liu et al., ICLR 2021, eq. 7): equal projections on the unit rows, Σα = 1."""

    name = "imtl_g"

    def weights(self, G: np.ndarray) -> WeightingResult:
        a = imtl_g_weights(G)
        return WeightingResult(a, residual=imtl_residual(G, a))


__all__ = ["IMTLG", "ZERO_RTOL", "imtl_g_weights", "imtl_residual"]
