"""SciPy fixed-point backend (``fixed-point``): ``α ← √(α / (Gα))``.

The map ``T(α) = √(α / (Gα))`` has exactly the solutions of ``Gα = 1/α`` (Yuan et al., ICDM 2024,
Sec. V-B, Claim 1) as fixed points: ``α = √(α/(Gα)) ⟺ α² (Gα) = α ⟺ αᵢ(Gα)ᵢ = 1``. We iterate it
with :func:`scipy.optimize.fixed_point` (Steffensen's ``del2`` acceleration by default, or
plain ``iteration``) on the unit-diagonal ``C = SGS`` from the ray-scaled start, and return
``α = S w`` (DESIGN §2.2).

It is *not* a reliable solver, and is here to be compared honestly (DESIGN §2.6): in log
coordinates the map is ``x ← ½(x − log Cw)`` with Jacobian ``½(I − WCW)`` at the solution,
whose eigenvalues ``½(1 − μ)`` (``μ`` the eigenvalues of ``WCW``) leave the unit disc when
``μ > 3`` — for two tasks exactly when ``cos ≤ −½``. Conflicting tasks therefore make the
fixed point repelling; iterates may also leave the domain (``(Cw)ᵢ ≤ 0``). Both end as
``not_converged`` (never a NaN or huge α). The convergence check is on the residual, not on
SciPy's step size. The backend cannot certify Pareto-stationarity except when the start
direction already lies in the null space (then ``pareto_stationary``, like ``newton``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from mtopt.solvers.base import DEFAULT_TOL, SolveResult, residual, unit_diagonal

METHODS = ("del2", "iteration")


class _LeftDomain(Exception):
    """An iterate with wᵢ ≤ 0, (Cw)ᵢ ≤ 0 or a non-finite entry: T is undefined there
    (Steffensen's extrapolation can leave the positive orthant)."""


def solve(
    G: np.ndarray,
    *,
    tol: float = DEFAULT_TOL,
    alpha0: np.ndarray | None = None,
    max_iter: int = 500,
    method: str = "del2",
    xtol: float = 1e-14,
) -> SolveResult:
    """Iterate ``w ← √(w / (Cw))`` with :func:`scipy.optimize.fixed_point`.

    Args:
        G: validated symmetric PSD float64 matrix with positive diagonal.
        tol: residual at or below which the result counts as ``ok``.
        alpha0: optional start (its direction is used); default the ray-scaled 1.
        max_iter: SciPy's iteration cap.
        method: ``"del2"`` (Steffensen acceleration, SciPy's default) or ``"iteration"``.
        xtol: SciPy's relative step tolerance (the status is decided by the residual).
    """
    from scipy.optimize import fixed_point

    if method not in METHODS:
        raise ValueError(f"fixed-point: method must be one of {METHODS}, got {method!r}")
    t0 = time.perf_counter()
    n = G.shape[0]
    C, s = unit_diagonal(G)
    w0 = np.ones(n)
    if alpha0 is not None:
        a = np.asarray(alpha0, dtype=np.float64).reshape(-1)
        if a.shape == (n,) and np.all(np.isfinite(a)) and np.all(a > 0):
            w0 = a / s
    q = float(w0 @ C @ w0)
    if not q > 1e-28 * n:
        return SolveResult(
            None, None, 0, time.perf_counter() - t0, "pareto_stationary", "fixed-point",
            info={"reason": "0 in the convex hull of the columns (start direction in null space)"},
        )  # fmt: skip
    w0 = w0 * math.sqrt(n / q)
    state: dict[str, Any] = {"w": w0, "evals": 0}

    def T(w: np.ndarray) -> np.ndarray:
        v = C @ w
        if not (np.all(v > 0) and np.all(w > 0) and np.all(np.isfinite(v))):
            raise _LeftDomain
        state["w"] = w
        state["evals"] += 1
        return np.sqrt(w / v)

    info: dict[str, Any] = {"method": method}
    try:
        w = fixed_point(T, w0, xtol=xtol, maxiter=max_iter, method=method)
    except _LeftDomain:
        info["reason"] = "iterate left the domain (w > 0, Cw > 0): the fixed point is repelling"
        return SolveResult(
            None, None, state["evals"], time.perf_counter() - t0, "not_converged",
            "fixed-point", info=info,
        )  # fmt: skip
    except RuntimeError as exc:  # SciPy's documented signal for "no convergence"
        if "Failed to converge" not in str(exc):
            raise
        w = state["w"]
        info["reason"] = f"scipy.optimize.fixed_point did not converge in {max_iter} iterations"
    seconds = time.perf_counter() - t0
    info["evaluations"] = state["evals"]
    iterations = state["evals"] // 2 if method == "del2" else state["evals"]
    w = np.asarray(w, dtype=np.float64)
    if not (np.all(np.isfinite(w)) and np.all(w > 0)):
        info.setdefault("reason", "non-finite iterate")
        return SolveResult(
            None, None, iterations, seconds, "not_converged", "fixed-point", info=info
        )
    alpha = s * w
    res = residual(G, alpha)
    if res > tol and "reason" not in info:
        info["reason"] = "SciPy's step test passed but the residual is above tol"
    return SolveResult(
        alpha, res, iterations, seconds, "ok" if res <= tol else "not_converged",
        "fixed-point", info=info,
    )  # fmt: skip
