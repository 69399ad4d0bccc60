"""The toy's fast path: numpy, all starts of one method at once (a batch of points).

The per-run path (:func:`mtopt.toy.methods._stepper`) keeps ``x`` in float32, rounds the
float64 analytic gradients to float32, and steps torch in float32. The fast path does the same
arithmetic in numpy, vectorised over the batch, with the two-task closed forms where they exist,
and gives the same bits (:mod:`mtopt.toy.fast_core` holds the float32 rules it copies).

Gradient aggregators (this module): weights in float64 from the float64 Gram matrix, applied
in float32, then ``torch.optim.Adam``:

* ``ls``: ``g₁ + g₂``;
* ``mgda``: the min-norm weight ``w₁ = clip((G₂₂ − G₁₂)/(G₁₁ + G₂₂ − 2G₁₂), 0, 1)``;
* ``imtl_g``: ``α₁ = A₁₂/(A₁₂ − A₁₁)`` with ``A₁ⱼ = G₂ⱼ/√G₂₂ − G₁ⱼ/√G₁₁`` (the one equation
  of equal projections, with ``α₁ + α₂ = 1``; parallel gradients: the aggregator's solve);
* ``cagrad`` (c = 0.4, rescale = 1): the 1-D dual ``min_t F(t)`` in closed form (:func:`_cagrad`);
* ``pcgrad``: with two tasks each gradient has one other to project on, so the random order
  does not matter: ``c = (1 − G₁₂/G₁₁, 1 − G₁₂/G₂₂)`` when ``G₁₂ < 0``, else ``(1, 1)``.

Methods with their own state: ``nashmtl``, ``pub_exact`` and ``pub_frobenius``
(:mod:`mtopt.toy.fast_balance`: Balance's policy, newton's own iteration per row) and ``famo``
(:mod:`mtopt.toy.fast_famo`). The test (tests/toy/test_toy_fast.py) checks every method's
trajectories, final points and counters against the per-run path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mtopt.toy.fast_balance import LeaveFastPath
from mtopt.toy.fast_core import F32, Adam32, batch_grads, combine32

__all__ = ["FAST_METHODS", "batch_grads", "coefficients", "direction", "run_batch"]

#: methods that run on the fast path (every toy method)
FAST_METHODS: tuple[str, ...] = (
    "ls", "mgda", "pcgrad", "imtl_g", "cagrad", "nashmtl", "famo", "pub_exact", "pub_frobenius",
)  # fmt: skip


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
    return combine32(coefficients(method, G).astype(F32), J32)


class _Aggregated:
    """A gradient aggregator + ``torch.optim.Adam`` on a batch (no state beyond Adam's)."""

    def __init__(self, method: str, x0: np.ndarray, lr: float, scale: float) -> None:
        self.method, self.x, self.scale = method, x0, scale
        self.adam = Adam32(x0.shape, lr)

    def step(self) -> None:
        J32 = batch_grads(self.x, self.scale).astype(F32)
        self.x = self.adam.step(self.x, direction(self.method, J32))

    def stats(self) -> list[dict[str, Any]]:
        return [{} for _ in range(self.x.shape[0])]


def _batch(method: str, x0: np.ndarray, lr: float, scale: float) -> Any:
    """The batch stepper of ``method`` (``x``, ``step()``, ``stats()``)."""
    if method in ("nashmtl", "pub_exact", "pub_frobenius"):
        from mtopt.toy.fast_balance import NashBatch, PubBatch
        from mtopt.toy.methods import AGGREGATOR_HP

        if method == "nashmtl":
            return NashBatch(x0, lr, scale, **AGGREGATOR_HP["nashmtl"])
        return PubBatch(x0, lr, scale, method.split("_", 1)[1])
    if method == "famo":
        from mtopt.toy.fast_famo import FamoBatch
        from mtopt.toy.methods import FAMO_HP, FAMO_MIN_LOSS

        bounds = (FAMO_MIN_LOSS * scale, FAMO_MIN_LOSS)
        return FamoBatch(x0, lr, scale, min_losses=bounds, **FAMO_HP)
    return _Aggregated(method, x0, lr, scale)


def run_batch(
    method: str,
    starts: Sequence[Sequence[float]],
    *,
    steps: int,
    lr: float,
    scale: float,
    every: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[int], np.ndarray, list[dict[str, Any]]]:
    """Run ``method`` from every start at once: ``(final [B, 2], record steps, record x
    [R, B, 2], stats per start)`` with the points recorded before steps ``0, every, 2·every,
    …`` (float32 values, as float64). ``progress(k)`` gets the steps done (``B`` per batch
    step, every 1000 batch steps and at the end). A batch that leaves the common path raises
    :class:`mtopt.toy.fast_balance.LeaveFastPath` (the caller reruns it per run)."""
    if method not in FAST_METHODS:
        raise ValueError(f"no fast path for {method!r}")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the few torch kernels called on [B, 2] arrays: no thread start-up
    try:
        return _run(method, starts, steps, float(lr), float(scale), every, progress)
    finally:
        torch.set_num_threads(threads)


def _run(method: str, starts: Sequence[Sequence[float]], steps: int, lr: float, scale: float,
         every: int, progress: Callable[[int], None] | None
         ) -> tuple[np.ndarray, list[int], np.ndarray, list[dict[str, Any]]]:  # fmt: skip
    x = np.asarray(starts, dtype=np.float64).astype(F32)
    B = x.shape[0]
    run = _batch(method, x, lr, scale)
    rec_steps: list[int] = []
    rec_x: list[np.ndarray] = []
    done = 0
    for t in range(steps):
        if t % every == 0:
            rec_steps.append(t)
            rec_x.append(run.x.astype(np.float64))
        try:
            run.step()
        except LeaveFastPath as exc:
            exc.reported = B * done  # steps already given to progress
            raise
        if progress is not None and (t + 1) % 1000 == 0:
            progress(B * (t + 1 - done))
            done = t + 1
    if progress is not None and done < steps:
        progress(B * (steps - done))
    return run.x.astype(np.float64), rec_steps, np.asarray(rec_x), run.stats()
