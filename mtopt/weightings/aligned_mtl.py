"""Aligned-MTL's weighting: align the rows so the system's condition number is 1.

Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for Multi-Task
Learning", CVPR 2023, Sec. 4 and Algorithm 1: with the Gram matrix ``M = GᵀG`` of the task
gradients (here ``G`` is our n×n Gram matrix) and its eigendecomposition ``M = VΛVᵀ`` (rank r),
the balance transformation is

    B = √λ_min · V Λ^{-1/2} Vᵀ ,        Ĵ = Bᵀ-aligned rows  (Ĵ Ĵᵀ = B G B = λ_min·P),

which makes every non-zero singular value of the aligned gradient system equal to
``σ_min`` (condition number κ = 1, the paper's stability criterion), ``P`` the projector on
the range of G. The update is the aligned rows summed with preference weights ``w`` (uniform
``1/n``, the paper's default): ``α = B w``. Eigenvalues below ``λ_max · n · eps`` count as 0
(as torchjd's implementation); ``G = 0`` gives ``α = w``.

Residual (the property the paper states): ``‖BGB − λ_min P‖_max / λ_max``.

Scale (update level): ``‖Dα‖ = √λ_min·‖P w‖``-ish: the smallest singular direction sets the
length, so with nearly dependent updates Aligned-MTL's step is much shorter than Algorithm
1's ``√n`` on the Frobenius-scaled G. Scale invariant.
"""

from __future__ import annotations

import numpy as np

from mtopt.weightings.base import Weighting, WeightingResult


def balance_transformation(G: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(B, P, λ_min)`` of Algorithm 1 on the range of ``G`` (B = I, P = 0 when G = 0)."""
    n = G.shape[0]
    lam, V = np.linalg.eigh(G)
    top = float(lam.max())
    tol = top * n * np.finfo(np.float64).eps
    keep = lam > tol
    if top <= 0 or not np.any(keep):
        return np.eye(n), np.zeros((n, n)), 0.0
    lam, V = lam[keep], V[:, keep]
    lmin = float(lam.min())
    B = np.sqrt(lmin) * (V * (1.0 / np.sqrt(lam))) @ V.T
    return B, V @ V.T, lmin


class AlignedMTL(Weighting):
    """Aligned-MTL (Senushkin et al., CVPR 2023, Algorithm 1): α = B·(1/n), κ(aligned) = 1."""

    name = "aligned_mtl"

    def weights(self, G: np.ndarray) -> WeightingResult:
        n = G.shape[0]
        B, P, lmin = balance_transformation(G)
        alpha = B @ np.full(n, 1.0 / n)
        top = float(np.max(np.linalg.eigvalsh(G))) if n else 0.0
        resid = 0.0 if top <= 0 else float(np.max(np.abs(B @ G @ B - lmin * P))) / top
        return WeightingResult(alpha, residual=resid, info={"rank": int(round(np.trace(P)))})


__all__ = ["AlignedMTL", "balance_transformation"]
