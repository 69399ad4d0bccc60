"""MGDA's weighting: the minimum-norm point of the convex hull of the rows of ``J``.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, eq. (3)
(after Désidéri, C. R. Math. 2012)::

    α = argmin_{α ∈ Δ} αᵀ G α,        Δ = {α ≥ 0, Σ α = 1}.

Solved exactly by Wolfe's minimum-norm-point algorithm (Wolfe, Math. Programming 1976) on
``G`` (moved here verbatim from :mod:`mtopt.methods.aggregators.mgda`, which imports it).

Optimality (KKT of the QP): with ``x = Gα``, ``xᵢ ≥ αᵀGα`` for every i, with equality where
``αᵢ > 0``; the certificate residual is the relative Frank-Wolfe gap
``(αᵀGα − minᵢ xᵢ) / maxᵢ Gᵢᵢ``.

Scale (at PUB's update level): α on the simplex, so ``Dα`` is the min-norm point of the hull of
the updates: ``‖Dα‖ ≤ minᵢ ‖Δᵢ‖``, shorter than Algorithm 1's step (whose ``Gα = 1/α`` gives
``‖Dα‖² = n`` on the scaled G) — at a common learning rate MGDA moves least.
"""

from __future__ import annotations

import numpy as np

from mtopt.weightings.base import Weighting, WeightingResult


def _affine_min_norm(GS: np.ndarray) -> np.ndarray:
    """Minimiser of ``μᵀ G_S μ`` on the affine hull ``Σ μ = 1`` (KKT system, least squares)."""
    k = GS.shape[0]
    K = np.zeros((k + 1, k + 1))
    K[:k, :k] = GS
    K[:k, k] = 1.0
    K[k, :k] = 1.0
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
    mu = sol[:k]
    s = mu.sum()
    return mu / s if s != 0 else np.full(k, 1.0 / k)


def min_norm_exact(G: np.ndarray, tol: float = 1e-12, max_iter: int | None = None) -> np.ndarray:
    """Wolfe's minimum-norm-point algorithm on the Gram matrix ``G``; returns ``w ∈ Δ``.

    Terminates when the Frank-Wolfe (duality) gap ``xᵀx − minᵢ gᵢᵀx ≤ tol · xᵀx`` (x the
    current point): the gap bounds ``‖x − x*‖² ≤ xᵀx − x*ᵀx*``, so the returned point is within a
    relative ``√tol`` of the min-norm point ``x*``, whatever the spread of the ``‖gᵢ‖``. (A gap
    relative to ``maxᵢ ‖gᵢ‖²`` stops far from ``x*`` when the gradient norms span many orders of
    magnitude.) Also stops when the best vertex is already in the active set (no progress
    possible in float64) or after ``max_iter`` major iterations.
    """
    n = G.shape[0]
    if n == 1:
        return np.ones(1)
    scale = float(np.max(np.diag(G)))
    if scale <= 0:
        return np.full(n, 1.0 / n)
    max_iter = max_iter or 50 * n + 100
    j = int(np.argmin(np.diag(G)))
    S = [j]
    lam = np.zeros(n)
    lam[j] = 1.0
    for _ in range(max_iter):
        Gx = G @ lam
        xx = float(lam @ Gx)
        i = int(np.argmin(Gx))
        if xx - Gx[i] <= tol * xx or i in S:
            break
        S.append(i)
        for _minor in range(n + 2):
            idx = np.array(S)
            mu = _affine_min_norm(G[np.ix_(idx, idx)])
            if np.all(mu > 1e-15):
                lam = np.zeros(n)
                lam[idx] = mu
                break
            cur = lam[idx]
            neg = mu <= 1e-15
            theta = float(np.min(cur[neg] / (cur[neg] - mu[neg])))
            new = cur + theta * (mu - cur)
            new[new < 1e-15] = 0.0
            lam = np.zeros(n)
            lam[idx] = new
            S = [int(s) for s in idx[new > 0]]
            if not S:  # numerical safety: restart at the best vertex
                S = [int(np.argmin(np.diag(G)))]
                lam[:] = 0.0
                lam[S[0]] = 1.0
                break
    lam = np.clip(lam, 0.0, None)
    return lam / lam.sum()


def simplex_gap(G: np.ndarray, alpha: np.ndarray) -> float:
    """``(αᵀGα − minᵢ (Gα)ᵢ) / maxᵢ Gᵢᵢ``: 0 exactly at the min-norm point (KKT of eq. 3)."""
    x = G @ alpha
    scale = float(np.max(np.diag(G)))
    return 0.0 if scale <= 0 else float(alpha @ x - np.min(x)) / scale


class MGDA(Weighting):
    """MGDA (Sener & Koltun, NeurIPS 2018, eq. 3): α = argmin over the simplex of αᵀGα."""

    name = "mgda"
    simplex = True

    def weights(self, G: np.ndarray) -> WeightingResult:
        a = min_norm_exact(G)
        return WeightingResult(
            a, residual=simplex_gap(G, a), info={"min_norm_sq": float(a @ G @ a)}
        )


__all__ = ["MGDA", "min_norm_exact", "simplex_gap"]
