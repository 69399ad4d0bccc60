"""CAGrad: conflict-averse gradient descent, solved through its dual on the Gram matrix.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021. The primal (eq. 3) looks for the update in a ball around the average gradient
``g₀ = (1/n) Σ gᵢ`` that maximises the worst task's decrease::

    max_d  minᵢ gᵢᵀd    s.t.  ‖d − g₀‖ ≤ c ‖g₀‖ .

Its dual (Sec. 3.2) is the n-dimensional convex problem

    min_{w ∈ Δ}  F(w) = g_wᵀ g₀ + √φ ‖g_w‖,     g_w = Σ wᵢ gᵢ,  φ = c² ‖g₀‖²,

i.e. ``F(w) = wᵀ G 1/n + c ‖g₀‖ √(wᵀ G w)`` on the Gram matrix only, and the primal solution is
``d* = g₀ + (√φ / ‖g_w*‖) g_w*``. We solve the dual with SLSQP (analytic gradient, on
``G / max diag G``, which leaves w unchanged), as the authors do, but to tight tolerances.

Output scaling (the authors' code, default ``rescale=1``, ``c = 0.4``): the returned vector is

    n · d* / (1 + c²)          (rescale=1, default)
    n · d*                     (rescale=0)
    n · d* / (1 + c)           (rescale=2)

the factor ``n`` being the authors' "match the sum loss" (so with ``c = 0`` CAGrad returns
``Σ gᵢ``, exactly LS). If ``g_w* = 0`` (0 in the convex hull, a Pareto-stationary point) the
ball term is dropped and ``d* = g₀`` (the authors add 1e-8 to ‖g_w‖, which has this effect
only when g_w* is exactly 0); numerically we treat ``‖g_w*‖ ≤ 1e-6 maxᵢ‖gᵢ‖`` as 0 and
report ``last_info["stationary"]``. There the primal optimum is not unique (its value is 0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator
from mtopt.methods.linalg import combine, gram64

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


class CAGrad(Aggregator):
    """CAGrad (Liu et al., NeurIPS 2021, eq. 3 and its dual); see the module docstring.

    Args:
        c: radius of the ball, relative to ‖g₀‖ (paper / authors' default 0.4).
        rescale: 0, 1 (default) or 2, the authors' output rescaling.
    """

    name = "cagrad"

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        super().__init__()
        if not (math.isfinite(float(c)) and float(c) >= 0):
            raise InputError(f"method.c: must be a finite number ≥ 0, got {c!r}")
        if int(rescale) not in (0, 1, 2):
            raise InputError(f"method.rescale: must be 0, 1 or 2, got {rescale!r}")
        self.c = float(c)
        self.rescale = int(rescale)

    def coefficients(self, G: np.ndarray) -> np.ndarray:
        """Coefficients ``β`` with output ``= Σ βᵢ gᵢ`` (dual weights stored in last_info)."""
        n = G.shape[0]
        w, f = cagrad_dual(G, self.c)
        g0_norm = math.sqrt(max(float(np.mean(G)), 0.0))
        gw_norm = math.sqrt(max(float(w @ G @ w), 0.0))
        gmax = math.sqrt(max(float(np.max(np.diag(G))), 0.0))
        stationary = gw_norm <= STATIONARY_RTOL * gmax
        lam = 0.0 if stationary else self.c * g0_norm / gw_norm
        self.last_info["stationary"] = stationary
        beta = np.full(n, 1.0 / n) + lam * w
        factor = {0: 1.0, 1: 1.0 / (1.0 + self.c**2), 2: 1.0 / (1.0 + self.c)}[self.rescale]
        self.last_info.update(
            {"dual_weights": [float(x) for x in w], "dual_value": f, "lambda": lam}
        )
        return n * factor * beta

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, None]:
        return combine(self.coefficients(gram64(J)), J), None
