"""The toy's fast path: numpy, all starts of one method at once (a batch of points).

The per-run path (:func:`mtopt.toy.methods._stepper`) keeps ``x`` in float32, rounds the
float64 analytic gradients to float32, aggregates them (weights in float64 from the float64
Gram matrix, applied in float32) and steps ``torch.optim.Adam`` in float32. This module does
the same arithmetic in numpy, vectorised over the batch, with the two-task closed forms of the
aggregators' weights:

* ``ls``: ``g₁ + g₂``;
* ``mgda``: the min-norm weight ``w₁ = clip((G₂₂ − G₁₂)/(G₁₁ + G₂₂ − 2G₁₂), 0, 1)``;
* ``imtl_g``: ``α₁ = A₁₂/(A₁₂ − A₁₁)`` with ``A₁ⱼ = G₂ⱼ/√G₂₂ − G₁ⱼ/√G₁₁`` (the one equation
  of equal projections, with ``α₁ + α₂ = 1``; parallel gradients: the aggregator's solve);
* ``cagrad`` (c = 0.4, rescale = 1): the 1-D dual ``min_t F(t)`` in closed form (:func:`_cagrad`);
* ``pcgrad``: with two tasks each gradient has one other to project on, so the random order
  does not matter: ``c = (1 − G₁₂/G₁₁, 1 − G₁₂/G₂₂)`` when ``G₁₂ < 0``, else ``(1, 1)``.

Adam is torch's single-tensor CPU Adam written out in float32 (``lerp`` and ``addcmul`` fused
multiply-adds, bias corrections in float64, ``eps`` outside the square root, and torch's own
float32 ``sqrt``, which is not always the correctly rounded one numpy gives); ``c @ J`` rounds
each product to float32 before the sum, as torch's float32 matmul does. The test
(tests/toy/test_toy_fast.py) checks final points and losses against the per-run path.
Nash-MTL, FAMO and PUB stay on the per-run path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mtopt.toy.problem import LOWER

#: methods that run on the fast path
FAST_METHODS: tuple[str, ...] = ("ls", "mgda", "pcgrad", "imtl_g", "cagrad")

_F32 = np.float32


def batch_grads(X: np.ndarray, scale: float) -> np.ndarray:
    """``[B, 2, 2]`` Jacobians (row i = ∇Lᵢ) at the points ``X`` ``[B, 2]``, float64.

    :func:`mtopt.toy.problem.value_and_grad` vectorised (same formulas and subgradients).
    """
    u, y = X[:, 0].astype(np.float64), X[:, 1].astype(np.float64)
    ty = np.tanh(y)
    sech2 = 1.0 - ty * ty
    p1 = -0.5 * u - 3.5 + ty
    p2 = -0.5 * u + 3.5 - ty
    a1, a2 = np.abs(p1), np.abs(p2)
    h1 = np.log(np.maximum(a1, LOWER)) + 6.0
    h2 = np.log(np.maximum(a2, LOWER)) + 6.0
    with np.errstate(divide="ignore"):
        k1 = np.where((a1 >= LOWER) & (p1 != 0.0), 1.0 / p1, 0.0)
        k2 = np.where((a2 >= LOWER) & (p2 != 0.0), 1.0 / p2, 0.0)
    h1u, h1y = -0.5 * k1, sech2 * k1
    h2u, h2y = -0.5 * k2, -sech2 * k2
    th = np.tanh(0.5 * y)
    dth = 0.5 * (1.0 - th * th)
    pos = th >= 0.0
    neg = -th >= 0.0
    c1, c1y = np.where(pos, th, 0.0), np.where(pos, dth, 0.0)
    c2, c2y = np.where(neg, -th, 0.0), np.where(neg, -dth, 0.0)
    ry = 0.1 * (y + 8.0) ** 2
    q1 = ((u - 7.0) ** 2 + ry) / 10.0 - 20.0
    q2 = ((u + 7.0) ** 2 + ry) / 10.0 - 20.0
    qy = 0.02 * (y + 8.0)
    J = np.empty((X.shape[0], 2, 2))
    J[:, 0, 0] = scale * (h1u * c1 + 0.2 * (u - 7.0) * c2)
    J[:, 0, 1] = scale * (h1y * c1 + h1 * c1y + qy * c2 + q1 * c2y)
    J[:, 1, 0] = h2u * c1 + 0.2 * (u + 7.0) * c2
    J[:, 1, 1] = h2y * c1 + h2 * c1y + qy * c2 + q2 * c2y
    return J


def _fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 ``a·b + c`` with one rounding (the product is exact in float64)."""
    return (a.astype(np.float64) * b + c).astype(_F32)


def _sqrt32(v: np.ndarray) -> np.ndarray:
    """torch's float32 ``sqrt`` (not always the correctly rounded one that numpy gives)."""
    import torch

    return torch.from_numpy(v).sqrt().numpy()


def coefficients(method: str, G: np.ndarray) -> np.ndarray:
    """``[B, 2]`` float64 task weights of ``method`` for the Gram matrices ``G`` ``[B, 2, 2]``."""
    g11, g12, g22 = G[:, 0, 0], G[:, 0, 1], G[:, 1, 1]
    B = G.shape[0]
    if method == "mgda":
        den = g11 + g22 - 2.0 * g12
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.clip((g22 - g12) / den, 0.0, 1.0)
        # a vertex when the other gradient's projection does not help (Wolfe's first check)
        w = np.where(g12 >= g11, 1.0, np.where(g12 >= g22, 0.0, w))
        w = np.where(np.maximum(g11, g22) <= 0.0, 0.5, w)
        return np.stack([w, 1.0 - w], axis=1)
    if method == "imtl_g":
        big = np.maximum(g11, g22)
        live1, live2 = g11 > 1e-24 * big, g22 > 1e-24 * big
        with np.errstate(divide="ignore", invalid="ignore"):
            s1, s2 = 1.0 / np.sqrt(g11), 1.0 / np.sqrt(g22)
            a11 = s2 * g12 - s1 * g11
            a12 = s2 * g22 - s1 * g12
            den = a12 - a11
            out = np.stack([a12 / den, -a11 / den], axis=1)
        out[~live2] = (1.0, 0.0)
        out[~live1] = (0.0, 1.0)
        out[big <= 0.0] = (0.5, 0.5)
        # singular (parallel gradients): the aggregator's least-squares answer
        bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
        if bad.size:
            from mtopt.methods.aggregators.imtl import imtl_g_weights

            for b in bad:
                out[b] = imtl_g_weights(G[b])
        return out
    if method == "cagrad":
        return _cagrad(G)
    if method == "pcgrad":
        c = np.ones((B, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            c[:, 0] = np.where((g12 < 0) & (g11 > 0), 1.0 - g12 / g11, 1.0)
            c[:, 1] = np.where((g12 < 0) & (g22 > 0), 1.0 - g12 / g22, 1.0)
        return c
    raise ValueError(f"no fast path for {method!r}")


def _cagrad(G: np.ndarray, c: float = 0.4) -> np.ndarray:
    """CAGrad's coefficients (``rescale = 1``) with the dual solved in closed form.

    On ``A = G / max diag G`` with ``w = (t, 1 − t)``: ``F(t) = δt + k√q(t) + const``,
    ``q = Pt² − 2Rt + A₂₂``, ``P = A₁₁ − 2A₁₂ + A₂₂``, ``R = A₂₂ − A₁₂``, ``δ = (A₁₁ − A₂₂)/2``,
    ``k = c√(bᵀAb)``; ``F′ = 0`` gives ``t = (R − δ√(det A/(k²P − δ²)))/P`` when
    ``δ² < k²P``, else a vertex; clipped to [0, 1].
    """
    from mtopt.methods.aggregators.cagrad import STATIONARY_RTOL

    scale = np.maximum(G[:, 0, 0], G[:, 1, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        A = G / scale[:, None, None]
        a11, a12, a22 = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        P, R, d = a11 - 2.0 * a12 + a22, a22 - a12, 0.5 * (a11 - a22)
        k = c * np.sqrt(np.maximum(0.25 * (a11 + 2.0 * a12 + a22), 0.0))
        det = np.maximum(a11 * a22 - a12 * a12, 0.0)
        room = k * k * P - d * d
        t = np.where(room > 0, (R - d * np.sqrt(det / room)) / P, np.where(d < 0, 1.0, 0.0))
        t = np.clip(t, 0.0, 1.0)
        w = np.stack([t, 1.0 - t], axis=1)
        gw = np.sqrt(np.maximum(np.einsum("bi,bij,bj->b", w, G, w), 0.0))
        g0 = np.sqrt(np.maximum(G.mean(axis=(1, 2)), 0.0))
        lam = np.where(gw <= STATIONARY_RTOL * np.sqrt(np.maximum(scale, 0.0)), 0.0, c * g0 / gw)
        out = 2.0 * (1.0 / (1.0 + c**2)) * (0.5 + lam[:, None] * w)
    bad = np.flatnonzero(~(np.isfinite(out).all(axis=1) & (P > 0) & (scale > 0)))
    if bad.size:  # degenerate rows: the aggregator itself
        from mtopt.methods.aggregators import get_aggregator

        agg = get_aggregator("cagrad", c=c, rescale=1)
        for b in bad:
            out[b] = agg.coefficients(G[b])  # type: ignore[attr-defined]
    return out


def direction(method: str, J32: np.ndarray) -> np.ndarray:
    """``[B, 2]`` float32 update direction from the float32 Jacobians ``J32`` ``[B, 2, 2]``."""
    if method == "ls":
        return J32[:, 0] + J32[:, 1]
    J = J32.astype(np.float64)
    G = np.einsum("bik,bjk->bij", J, J)
    c = coefficients(method, G).astype(_F32)
    # c @ J as torch does it in float32: each product rounded, then the sum
    return c[:, 0:1] * J32[:, 0] + c[:, 1:2] * J32[:, 1]


def run_batch(
    method: str,
    starts: Sequence[Sequence[float]],
    *,
    steps: int,
    lr: float,
    scale: float,
    every: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Run ``method`` from every start at once: ``(final [B, 2], record steps, record x
    [R, B, 2])`` with the points recorded before steps ``0, every, 2·every, …`` (float32
    values, as float64). ``progress(k)`` gets the steps done (``B`` per batch step)."""
    if method not in FAST_METHODS:
        raise ValueError(f"no fast path for {method!r}")
    x = np.asarray(starts, dtype=np.float64).astype(_F32)
    B = x.shape[0]
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    b1, b2, eps = 0.9, 0.999, 1e-8
    w1, w2, e32 = _F32(1.0 - b1), _F32(b2), _F32(eps)
    v1 = _F32(1.0 - b2)
    rec_steps: list[int] = []
    rec_x: list[np.ndarray] = []
    done = 0
    for t in range(steps):
        if t % every == 0:
            rec_steps.append(t)
            rec_x.append(x.astype(np.float64))
        J32 = batch_grads(x, scale).astype(_F32)
        g = direction(method, J32)
        # torch.optim.Adam, single-tensor CPU kernels, float32
        m = _fma32(w1, g - m, m)  # lerp(m, g, 1 − β₁)
        v = _fma32(v1 * g, g, v * w2)  # v·β₂, then addcmul(g, g, 1 − β₂)
        step = t + 1
        step_size = lr / (1.0 - b1**step)
        bc2 = (1.0 - b2**step) ** 0.5
        denom = _sqrt32(v) / _F32(bc2) + e32
        x = x + (_F32(-step_size) * m) / denom
        if progress is not None and (t + 1) % 1000 == 0:
            progress(B * (t + 1 - done))
            done = t + 1
    if progress is not None and done < steps:
        progress(B * (steps - done))
    return x.astype(np.float64), rec_steps, np.asarray(rec_x)
