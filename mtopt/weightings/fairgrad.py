"""FairGrad's weighting: α-fair allocation of the update among the tasks.

Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, Sec. 4: the update
``d = Jᵀw`` maximises ``Σᵢ uᵢ^{1−a}/(1−a)`` of the tasks' decreases ``uᵢ = gᵢᵀd`` (a-fair
utility; a = 1 is proportional fairness, Nash-MTL's ``Σ log uᵢ``), and its optimality
condition, in the Gram matrix, is the equation the authors solve per step:

    (Gw)ᵢ = wᵢ^{−1/a},   w > 0        (a = 1: Nash-MTL's ``Gw = 1/w``).

It is the stationarity condition of the strictly convex ``f(w) = ½wᵀGw + Σᵢ h(wᵢ)`` with
``h'(w) = −w^{−1/a}`` (``h = −log w`` for a = 1, ``−w^p/p`` with ``p = 1 − 1/a`` otherwise), so
we solve it by damped Newton on f (positivity kept by a fraction-to-boundary rule, Armijo
backtracking) on ``G/max Gᵢᵢ`` and rescale (``G → sG`` gives ``w → s^{−a/(1+a)}w``). The
authors use ``scipy.optimize.least_squares`` on the same equation. Without a positive solution
(e.g. G singular with a non-negative null vector: f is unbounded below) the status is
``not_converged`` and PUB's fallback applies. Residual: ``maxᵢ |wᵢ^{1/a}(Gw)ᵢ − 1|``, Nash's
certificate for a = 1.

``a`` (``fair_alpha``, default 2.0) is our default: the paper tunes it per benchmark.

Scale (update level): ``wᵀGw = Σ wᵢ^{1−1/a}``; on the Frobenius-scaled G this is of the same
order as Algorithm 1's ``n`` (equal for a = 1). Not scale invariant.
"""

from __future__ import annotations

import numpy as np

from mtopt.weightings.base import Weighting, WeightingResult, finite_positive

#: certificate tolerance of a solve
TOL = 1e-9
MAX_ITER = 200


def fair_residual(G: np.ndarray, w: np.ndarray, a: float) -> float:
    """``maxᵢ |wᵢ^{1/a}(Gw)ᵢ − 1|`` (inf for a non-positive w)."""
    if not np.all(w > 0):
        return float("inf")
    return float(np.max(np.abs(w ** (1.0 / a) * (G @ w) - 1.0)))


def solve_fair(G: np.ndarray, a: float, tol: float = TOL, max_iter: int = MAX_ITER
               ) -> tuple[np.ndarray | None, int, float]:  # fmt: skip
    """Damped Newton for ``Gw = w^{−1/a}``; returns (w or None, iterations, residual)."""
    s = float(np.max(np.diag(G)))
    if s <= 0:
        return None, 0, float("inf")
    A = G / s
    p = 1.0 - 1.0 / a

    def f(w: np.ndarray) -> float:
        h = -np.sum(np.log(w)) if p == 0 else -np.sum(w**p) / p
        return float(0.5 * w @ A @ w + h)

    d = np.clip(np.diag(A), 1e-12, None)
    w = d ** (-a / (1.0 + a))
    it = 0
    res = fair_residual(A, w, a)
    while it < max_iter and res > tol:
        it += 1
        grad = A @ w - w ** (-1.0 / a)
        H = A + np.diag((1.0 / a) * w ** (-1.0 / a - 1.0))
        try:
            step = -np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(H, grad, rcond=None)[0]
        t = 1.0
        neg = step < 0
        if np.any(neg):
            t = min(1.0, 0.99 * float(np.min(-w[neg] / step[neg])))
        f0, slope = f(w), float(grad @ step)
        while t > 1e-12 and f(w + t * step) > f0 + 1e-4 * t * slope:
            t *= 0.5
        if t <= 1e-12 or not np.all(np.isfinite(w + t * step)):
            break
        w = w + t * step
        res = fair_residual(A, w, a)
        if float(np.max(w)) > 1e12:  # running off to infinity: no positive solution
            break
    if res > tol:
        return None, it, res
    return w * s ** (-a / (1.0 + a)), it, res


class FairGrad(Weighting):
    """FairGrad (Ban & Ji, ICML 2024, Sec. 4): ``(Gw)ᵢ = wᵢ^{−1/a}``; ``fair_alpha`` is a."""

    name = "fairgrad"
    scale_invariant = False

    def __init__(self, fair_alpha: float = 2.0) -> None:
        self.a = finite_positive("fair_alpha", fair_alpha)

    def weights(self, G: np.ndarray) -> WeightingResult:
        w, it, res = solve_fair(G, self.a)
        if w is None:
            return WeightingResult(None, status="not_converged", residual=res, iterations=it)
        return WeightingResult(w, residual=fair_residual(G, w, self.a), iterations=it)


__all__ = ["FairGrad", "fair_residual", "solve_fair"]
