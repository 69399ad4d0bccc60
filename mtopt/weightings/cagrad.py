"""CAGrad's weighting: the coefficients of the conflict-averse update, from the Gram matrix.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021, eq. (3)::

    max_d  minᵢ gᵢᵀd    s.t.  ‖d − g₀‖ ≤ c‖g₀‖,       g₀ = (1/n) Σ gᵢ ,

solved through its dual (Sec. 3.2) ``min_{w ∈ Δ} wᵀG1/n + c‖g₀‖√(wᵀGw)`` and
``d* = g₀ + (c‖g₀‖/‖g_w‖) g_w``; the code (SLSQP + a Newton polish on the face) moved here
verbatim from :mod:`mtopt.methods.aggregators.cagrad`, which imports it. α are the
coefficients of the rows: ``Σ αᵢ gᵢ = n·d*·factor`` with the authors' ``rescale`` factor
(``1/(1+c²)`` by default, so ``c = 0`` gives α = 1, the sum).

Residual: the KKT spread of the dual's gradient on the support of w (0 at the optimum).

Scale (update level): ``Dα ≈ n·d*/(1+c²)``, d* within ``c‖D̄‖`` of the mean update: about the
plain sum ``Σᵢ Δᵢ`` — with conflicting updates longer than MGDA's, and ~√n·(‖Δ̄‖) where
Algorithm 1 gives ``√n`` on the Frobenius-scaled G.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize

from mtopt.errors import InputError
from mtopt.weightings.base import Weighting, WeightingResult, finite_positive

#: ‖g_w*‖ below this fraction of maxᵢ‖gᵢ‖ counts as 0 in the hull (the dual's kink, where
#: SLSQP only resolves w to ~1e-8 and g_w*/‖g_w*‖ is noise)
STATIONARY_RTOL = 1e-6


def _polish(A: np.ndarray, a: np.ndarray, k: float, w: np.ndarray, iters: int = 30) -> np.ndarray:
    """Newton on the face of the simplex that SLSQP found (F is smooth there if g_w ≠ 0).

    Minimises ``F`` over ``{w_S : Σ w_S = 1}`` for the support ``S`` of ``w`` (KKT system,
    least squares), keeping ``w ≥ 0``; a step is kept only if it does not increase ``F``.
    """

    def fun(x: np.ndarray) -> float:
        return float(x @ a + k * math.sqrt(max(float(x @ A @ x), 0.0)))

    idx = np.flatnonzero(w > 1e-12)
    m = idx.size
    if m < 2:
        return w
    As, as_ = A[np.ix_(idx, idx)], a[idx]

    def grad_on(x: np.ndarray) -> np.ndarray | None:
        Ax = As @ x
        q = float(x @ Ax)
        return None if q <= 1e-300 else as_ + k * Ax / math.sqrt(q)

    def spread(g: np.ndarray) -> float:  # KKT residual on the face: the gradient is constant
        return float(g.max() - g.min())

    ws = w[idx].copy()
    f = fun(w)
    g = grad_on(ws)
    for _ in range(iters):
        if g is None or spread(g) <= 1e-15 * (1.0 + float(np.abs(g).max())):
            break
        Aw = As @ ws
        q = float(ws @ Aw)
        r = math.sqrt(q)
        H = k * (As / r - np.outer(Aw, Aw) / (r * q))
        K = np.zeros((m + 1, m + 1))
        K[:m, :m] = H
        K[:m, m] = 1.0
        K[m, :m] = 1.0
        step = np.linalg.lstsq(K, np.concatenate([-g, [0.0]]), rcond=None)[0][:m]
        t = 1.0
        neg = step < 0
        if np.any(neg):
            t = min(1.0, float(np.min(-ws[neg] / step[neg])))
        cand = np.clip(ws + t * step, 0.0, None)
        cand /= cand.sum()
        full = np.zeros_like(w)
        full[idx] = cand
        fc, gc = fun(full), grad_on(cand)
        # accept a step that does not raise F beyond round-off and lowers the KKT residual
        if gc is None or fc > f + 1e-14 * abs(f) or spread(gc) >= spread(g):
            break
        ws, f, g = cand, min(f, fc), gc
    out = np.zeros_like(w)
    out[idx] = ws
    return out


def cagrad_dual(G: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Minimiser ``w ∈ Δ`` of CAGrad's dual ``F(w)`` on ``G`` and the value ``F(w)``.

    SLSQP (analytic gradient, tight tolerance) from the uniform weights, then Newton on the
    face it found (:func:`_polish`), on ``G / max diag G`` (w is invariant to scaling G).
    """
    n = G.shape[0]
    b = np.full(n, 1.0 / n)
    if n == 1 or c == 0:
        return b.copy(), float(b @ G @ b + c * float(np.sqrt(max(b @ G @ b, 0.0))) ** 2)
    scale = float(np.max(np.diag(G)))
    if scale <= 0:
        return b.copy(), 0.0
    A = G / scale
    a = A @ b
    k = c * math.sqrt(max(float(b @ A @ b), 0.0))

    def fun(w: np.ndarray) -> float:
        return float(w @ a + k * math.sqrt(max(float(w @ A @ w), 0.0)))

    def jac(w: np.ndarray) -> np.ndarray:
        Aw = A @ w
        return a + k * Aw / math.sqrt(max(float(w @ Aw), 1e-300))

    res = minimize(
        fun,
        b,
        jac=jac,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda w: np.sum(w) - 1.0, "jac": lambda w: np.ones(n)}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    w = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, None)
    w = w / w.sum() if w.sum() > 0 else b.copy()
    if fun(b) < fun(w):
        w = b.copy()
    w = _polish(A, a, k, w)
    return w, fun(w) * scale


def cagrad_weights(G: np.ndarray, c: float, rescale: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The coefficients ``β`` with ``Σ βᵢ gᵢ`` = CAGrad's output, and what was found (dual
    weights and value, λ, whether ``g_w* = 0``)."""
    n = G.shape[0]
    w, f = cagrad_dual(G, c)
    g0_norm = math.sqrt(max(float(np.mean(G)), 0.0))
    gw_norm = math.sqrt(max(float(w @ G @ w), 0.0))
    gmax = math.sqrt(max(float(np.max(np.diag(G))), 0.0))
    stationary = gw_norm <= STATIONARY_RTOL * gmax
    lam = 0.0 if stationary else c * g0_norm / gw_norm
    beta = np.full(n, 1.0 / n) + lam * w
    factor = {0: 1.0, 1: 1.0 / (1.0 + c**2), 2: 1.0 / (1.0 + c)}[rescale]
    info = {"stationary": stationary, "dual_weights": [float(x) for x in w], "dual_value": f,
            "lambda": lam}  # fmt: skip
    return n * factor * beta, info


def dual_kkt(G: np.ndarray, w: np.ndarray, c: float) -> float:
    """Spread of the dual's gradient ``G1/n + c‖g₀‖Gw/‖g_w‖`` on the support of w (relative to
    ``max Gᵢᵢ``), plus how far an off-support entry is below it: 0 at the dual's optimum."""
    n = G.shape[0]
    scale = float(np.max(np.diag(G)))
    q = float(w @ G @ w)
    if scale <= 0 or q <= 1e-12 * scale:
        return 0.0
    grad = G @ np.full(n, 1.0 / n) + c * math.sqrt(max(float(np.mean(G)), 0.0)) * (
        G @ w
    ) / math.sqrt(q)
    on = w > 1e-9
    top = float(grad[on].max())
    below = float(np.max(top - grad[~on])) if np.any(~on) else 0.0
    return (float(grad[on].max() - grad[on].min()) + max(below, 0.0)) / scale


class CAGrad(Weighting):
    """CAGrad (Liu et al., NeurIPS 2021, eq. 3 via its dual); ``c`` the ball's radius relative
    to ``‖g₀‖`` (default 0.4), ``rescale`` 0, 1 (default) or 2 as in the authors' code."""

    name = "cagrad"

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        self.c = finite_positive("c", c, allow_zero=True)
        if rescale not in (0, 1, 2) or isinstance(rescale, bool):
            raise InputError(f"rescale: must be 0, 1 or 2, got {rescale!r}")
        self.rescale = int(rescale)

    def weights(self, G: np.ndarray) -> WeightingResult:
        beta, info = cagrad_weights(G, self.c, self.rescale)
        w = np.asarray(info["dual_weights"])
        return WeightingResult(beta, residual=dual_kkt(G, w, self.c), info=info)


__all__ = ["STATIONARY_RTOL", "CAGrad", "cagrad_dual", "cagrad_weights", "dual_kkt"]
