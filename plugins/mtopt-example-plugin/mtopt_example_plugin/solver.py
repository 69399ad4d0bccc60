"""``scipy-root``: PUB's balancing equation as a root-finding problem for SciPy.

Solves ``Gα = 1/α, α > 0`` (Yuan, Cai & Dong, ICDM 2024, Sec. V-B, Claim 1) on the
unit-diagonal ``C = SGS`` (``S = diag(1/√Gᵢᵢ)``, then ``α = S w``) as the root of

    F(x) = w ∘ (Cw) − 1,    w = exp(x),    ∂F/∂x = diag(w ∘ Cw) + W C W,

with :func:`scipy.optimize.root` (MINPACK ``hybr``), starting from the minimiser of
``½wᵀCw − Σ log w`` along the ray ``t·1``. The log parametrisation keeps ``w > 0``. MINPACK
has no notion of Pareto-stationarity: when no solution exists (0 in the convex hull of the
columns) it fails and the result is ``not_converged`` without an α, or with a diverging α,
which mtopt reports with its residual.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from mtopt.solvers import DEFAULT_TOL, SolveResult, residual


def solve(G: np.ndarray, *, tol: float = DEFAULT_TOL, max_fev: int = 2000) -> SolveResult:
    """Root of ``w∘(Cw) = 1`` in ``x = log w``; see the module docstring."""
    from scipy.optimize import root

    t0 = time.perf_counter()
    n = G.shape[0]
    s = 1.0 / np.sqrt(np.diag(G))
    C = G * np.outer(s, s)
    np.fill_diagonal(C, 1.0)
    q = float(C.sum())
    if not q > 1e-28 * n:
        return SolveResult(
            None, None, 0, time.perf_counter() - t0, "pareto_stationary", "scipy-root",
            info={"reason": "0 in the convex hull of the columns (1ᵀC1 = 0)"},
        )  # fmt: skip
    x0 = np.full(n, 0.5 * math.log(n / q))

    def fun(x: np.ndarray) -> np.ndarray:
        w = np.exp(x)
        return w * (C @ w) - 1.0

    def jac(x: np.ndarray) -> np.ndarray:
        w = np.exp(x)
        J = C * np.outer(w, w)
        J[np.diag_indices(n)] += w * (C @ w)
        return J

    with np.errstate(over="ignore", invalid="ignore"):
        sol = root(fun, x0, jac=jac, method="hybr", options={"maxfev": max_fev, "xtol": 1e-15})
    seconds = time.perf_counter() - t0
    info: dict[str, Any] = {"message": str(sol.message), "nfev": int(sol.nfev)}
    w = np.exp(sol.x)
    if not np.all(np.isfinite(w)):
        return SolveResult(None, None, int(sol.nfev), seconds, "not_converged", "scipy-root",
                           info=info)  # fmt: skip
    alpha = s * w
    res = residual(G, alpha)
    status = "ok" if res <= tol else "not_converged"
    return SolveResult(alpha, res, int(sol.nfev), seconds, status, "scipy-root", info=info)
