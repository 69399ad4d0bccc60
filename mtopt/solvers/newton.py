"""Exact damped Newton solver for PUB's balancing equation (the default backend).

``G α = 1/α, α > 0`` is the stationarity condition of the strictly convex

    f(α) = ½ αᵀGα − Σᵢ log αᵢ ,     ∇f = Gα − 1/α ,     ∇²f = G + diag(1/α²) ≻ 0

(DESIGN §2.1; the equation is Claim 1 of Yuan et al., "A Parameter Update Balancing Algorithm
for Multi-task Ranking Models in Recommendation Systems", ICDM 2024, and eq. (1)-(2) of Navon
et al., "Multi-Task Learning as a Bargaining Game", ICML 2022). The minimiser is unique when it
exists; it does not exist exactly when 0 lies in the convex hull of some columns of D
(f is then unbounded below along a direction u ≥ 0 with Gu = 0).

We solve on the unit-diagonal ``C = SGS`` (``S = diag(1/√Gᵢᵢ)``) and return ``α = S w``, which
is exact by the scaling law ``α(SGS) = S⁻¹α(G)`` (DESIGN §2.2). The start is the minimiser of f
along the ray ``t·1`` (or along a warm start ``alpha0``); steps are damped so that w stays
positive (fraction-to-the-boundary 0.99) with Armijo backtracking, switching to full steps once
the Newton decrement is tiny (quadratic convergence, where f itself no longer resolves
progress in float64). Iteration stops at residual ≤ 1e-14·n or when the residual stops falling.
"""

from __future__ import annotations

import time

import numpy as np

from mtopt.solvers.base import DEFAULT_TOL, SolveResult, residual, unit_diagonal

#: |w|∞ beyond which (on the unit-diagonal problem) we declare the point Pareto-stationary:
#: w ~ 1/√(1+cos) for two tasks, so 1e7 means 1 + cos ≈ 1e-14, at float64's resolution.
MAX_W = 1e7


def _f(C: np.ndarray, w: np.ndarray) -> float:
    return 0.5 * float(w @ C @ w) - float(np.sum(np.log(w)))


def solve(
    G: np.ndarray,
    *,
    tol: float = DEFAULT_TOL,
    alpha0: np.ndarray | None = None,
    max_iter: int = 100,
) -> SolveResult:
    """Solve ``Gα = 1/α`` by damped Newton; see the module docstring.

    Args:
        G: validated symmetric PSD float64 matrix with positive diagonal (see
            :func:`mtopt.solvers.solve`, which checks this).
        tol: residual at or below which the result counts as ``ok`` (Newton iterates further
            anyway, to float64 precision; this only sets the status).
        alpha0: optional warm start (e.g. the previous step's α); its direction is used.
        max_iter: iteration cap.
    """
    t0 = time.perf_counter()
    n = G.shape[0]
    C, s = unit_diagonal(G)
    w = np.ones(n) if alpha0 is None else np.asarray(alpha0, dtype=np.float64) / s
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        w = np.ones(n)
    q = float(w @ C @ w)
    if not q > 1e-28 * n:
        u = w / w.sum()
        return SolveResult(
            None,
            None,
            0,
            time.perf_counter() - t0,
            "pareto_stationary",
            "newton",
            info={"reason": "0 in the convex hull of the columns", "hull_upper": q / w.sum() ** 2}
            | {"direction": [float(x) for x in u]},
        )
    w = w * np.sqrt(n / q)  # minimiser of f along the ray
    target = 1e-14 * max(n, 1)
    best = np.inf
    stall = 0
    it = 0
    stationary = False
    for it in range(1, max_iter + 1):
        Cw = C @ w
        r = float(np.max(np.abs(w * Cw - 1.0)))
        if r <= target:
            it -= 1
            break
        if r < best * 0.5:
            best, stall = r, 0
        else:
            stall += 1
            if stall >= 6 and r <= 1e-9:
                it -= 1
                break  # float64 floor reached
        grad = Cw - 1.0 / w
        H = C + np.diag(1.0 / (w * w))
        try:
            L = np.linalg.cholesky(H)
            dx = -np.linalg.solve(L.T, np.linalg.solve(L, grad))
        except np.linalg.LinAlgError:
            dx = -np.linalg.lstsq(H, grad, rcond=None)[0]
        decrement = float(-(grad @ dx))
        neg = dx < 0
        t = 1.0
        if np.any(neg):
            t = min(1.0, 0.99 * float(np.min(-w[neg] / dx[neg])))
        if decrement > 1e-12:
            f0 = _f(C, w)
            while t > 1e-14 and _f(C, w + t * dx) > f0 - 1e-4 * t * decrement:
                t *= 0.5
        w = w + t * dx
        if float(np.max(w)) > MAX_W:
            stationary = True
            break
    seconds = time.perf_counter() - t0
    if stationary:
        u = w / w.sum()
        return SolveResult(
            None,
            None,
            it,
            seconds,
            "pareto_stationary",
            "newton",
            info={
                "reason": "alpha diverges: 0 is (numerically) in the convex hull of the columns",
                "hull_upper": float(u @ C @ u),
            },
        )
    alpha = s * w
    res = residual(G, alpha)
    return SolveResult(
        alpha, res, it, seconds, "ok" if res <= tol else "not_converged", "newton", 0.0, {}
    )
