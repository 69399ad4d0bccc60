"""Closed-form α for two tasks (backend ``closed-form``).

For n = 2 the balancing equation ``Gα = 1/α`` (Yuan et al., ICDM 2024, Sec. V-B, Claim 1) has
the explicit solution (DESIGN §2.4): with ``cos = G₁₂ / √(G₁₁G₂₂)``,

    αᵢ = 1 / (√Gᵢᵢ · √(1 + cos)),

which exists iff ``cos > −1`` (the two updates are not exactly opposite). Check:
``α₁(Gα)₁ = α₁(G₁₁α₁ + G₁₂α₂) = (1 + cos)/(1 + cos) = 1``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from mtopt.errors import InputError
from mtopt.solvers.base import DEFAULT_TOL, SolveResult, residual

#: 1 + cos below this is treated as exactly opposite updates (the same bound as newton's
#: MAX_W = 1e7 on the unit-diagonal weights: w = 1/√(1+cos)).
MIN_ONE_PLUS_COS = 1e-14


def solve(G: np.ndarray, *, tol: float = DEFAULT_TOL) -> SolveResult:
    """Two-task closed form; raises :class:`~mtopt.errors.InputError` for n ≠ 2.

    Args:
        G: validated symmetric PSD 2×2 float64 matrix with positive diagonal.
        tol: residual at or below which the result counts as ``ok``.
    """
    n = G.shape[0]
    if n != 2:
        raise InputError(
            f"solver: closed-form solves exactly n = 2 tasks, got n = {n}; use solver='newton'"
        )
    t0 = time.perf_counter()
    g11, g12, g22 = float(G[0, 0]), float(G[0, 1]), float(G[1, 1])
    cos = g12 / math.sqrt(g11 * g22)
    one_plus = 1.0 + cos
    if one_plus < MIN_ONE_PLUS_COS:
        return SolveResult(
            None,
            None,
            0,
            time.perf_counter() - t0,
            "pareto_stationary",
            "closed-form",
            info={"reason": "the two updates are opposite (cos = -1)", "one_plus_cos": one_plus},
        )
    root = math.sqrt(one_plus)
    alpha = np.array([1.0 / (math.sqrt(g11) * root), 1.0 / (math.sqrt(g22) * root)])
    seconds = time.perf_counter() - t0
    res = residual(G, alpha)
    return SolveResult(
        alpha,
        res,
        0,
        seconds,
        "ok" if res <= tol else "not_converged",
        "closed-form",
        info={"one_plus_cos": one_plus},
    )
