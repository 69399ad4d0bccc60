"""The toy's fast path: numpy, the starts of several methods at once (a batch of points).

The per-run path (:func:`mtopt.toy.methods._stepper`) keeps ``x`` in float32, rounds the
float64 analytic gradients to float32, and steps torch in float32. The fast path does the same
arithmetic in numpy, vectorised over the batch, with the two-task closed forms where they exist,
and gives the same bits (:mod:`mtopt.toy.fast_core` holds the float32 rules it copies).
:func:`run_group` runs a list of methods as one batch: one gradient call and one Adam step for
all rows per step, each method's rule on its own rows (rows are independent, so the bits do not
depend on the company a method keeps: tested).

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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtopt.toy.fast_balance import LeaveFastPath
from mtopt.toy.fast_core import F32, Adam32, batch_grads, combine32

__all__ = ["FAST_METHODS", "BatchResult", "batch_grads", "coefficients", "direction", "run_group"]

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


#: the gradient aggregators: one stepper for all of them in a group (one Gram call)
_AGGREGATORS = ("ls", "mgda", "pcgrad", "imtl_g", "cagrad")


class _Aggregated:
    """The gradient aggregators' directions for their rows (``B`` per method, in order);
    stateless, Adam is the caller's."""

    uses_adam = True

    def __init__(self, methods: Sequence[str], B: int) -> None:
        self.methods, self.B = list(methods), B

    def direction(self, J32: np.ndarray, L32: np.ndarray) -> np.ndarray:
        B = self.B
        c = np.ones((J32.shape[0], 2))  # ls: g₁ + g₂ (1·gᵢ is exact)
        if self.methods != ["ls"]:
            J = J32.astype(np.float64)
            G = np.einsum("bik,bjk->bij", J, J)
            for k, m in enumerate(self.methods):
                if m != "ls":
                    c[k * B : (k + 1) * B] = coefficients(m, G[k * B : (k + 1) * B])
        return combine32(c.astype(F32), J32)

    def stats(self) -> list[dict[str, Any]]:
        return [{} for _ in range(self.B * len(self.methods))]


def _units(methods: Sequence[str], B: int, lr: float, scale: float) -> list[tuple[Any, list[str]]]:
    """The batch steppers for ``methods`` and the methods each one runs (``B`` rows per method,
    in that order): all aggregators in one, both PUBs in one, Nash-MTL, FAMO. A stepper has
    ``direction(J32, L32)`` for a gradient handed to ``torch.optim.Adam`` (``uses_adam``), else
    ``advance(x, J32, L32)``; and ``stats()`` (one dict per row)."""
    for m in methods:
        if m not in FAST_METHODS:
            raise ValueError(f"no fast path for {m!r}")
    units: list[tuple[Any, list[str]]] = []
    agg = [m for m in methods if m in _AGGREGATORS]
    if agg:
        units.append((_Aggregated(agg, B), agg))
    pubs = [m for m in methods if m in ("pub_exact", "pub_frobenius")]
    if pubs or "nashmtl" in methods:
        from mtopt.toy.fast_balance import NashBatch, PubBatch
        from mtopt.toy.methods import AGGREGATOR_HP

        if "nashmtl" in methods:
            units.append((NashBatch(B, **AGGREGATOR_HP["nashmtl"]), ["nashmtl"]))
        if pubs:
            scales = [m.split("_", 1)[1] for m in pubs for _ in range(B)]
            units.append((PubBatch(B * len(pubs), lr, scales), pubs))
    if "famo" in methods:
        from mtopt.toy.fast_famo import FamoBatch
        from mtopt.toy.methods import FAMO_HP, FAMO_MIN_LOSS

        bounds = (FAMO_MIN_LOSS * scale, FAMO_MIN_LOSS)
        units.append((FamoBatch(B, min_losses=bounds, **FAMO_HP), ["famo"]))
    return units


@dataclass
class BatchResult:
    """One method's runs from every start (``left``: it left the fast path at step ``left_at``
    with ``reported`` steps given to ``progress``; rerun it on the per-run path)."""

    final: np.ndarray
    rec_x: np.ndarray
    stats: list[dict[str, Any]]
    #: the method's wall and CPU seconds (its own calls timed; the shared Jacobian and Adam
    #: work split by rows; CPU in proportion to wall)
    seconds: float
    cpu_seconds: float
    left: bool = False
    reported: int = 0


def run_group(
    methods: Sequence[str],
    starts: Sequence[Sequence[float]],
    *,
    steps: int,
    lr: float,
    scale: float,
    every: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[int], dict[str, BatchResult]]:
    """Run ``methods`` from every start, all as one batch of ``len(methods)·len(starts)``
    points: one Jacobian call and one Adam step for all of them per step. Returns the record
    steps (``0, every, 2·every, …``, before the step) and one :class:`BatchResult` per method
    (points as float64 of the float32 values). ``progress(k)`` gets the steps done (one per
    point and step, every 1000 steps and at the end; a method that leaves the fast path stops
    counting there)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the few torch kernels called on small arrays: no thread start-up
    try:
        return _run_group(list(methods), starts, steps, float(lr), float(scale), every, progress)
    finally:
        torch.set_num_threads(threads)


def _run_group(methods: list[str], starts: Sequence[Sequence[float]], steps: int, lr: float,
               scale: float, every: int, progress: Callable[[int], None] | None
               ) -> tuple[list[int], dict[str, BatchResult]]:  # fmt: skip
    x0 = np.asarray(starts, dtype=np.float64).astype(F32)
    B = x0.shape[0]
    units = _units(methods, B, lr, scale)
    spans, rows, k = [], {}, 0
    for _, ms in units:
        spans.append(slice(k, k + B * len(ms)))
        for m in ms:
            rows[m] = slice(k, k + B)
            k += B
    x = np.tile(x0, (k // B, 1))
    by_adam = np.concatenate([np.full(sp.stop - sp.start, u.uses_adam)
                              for (u, _), sp in zip(units, spans)])  # fmt: skip
    adam = Adam32((int(by_adam.sum()), 2), lr)
    live = list(range(len(units)))
    left: dict[str, int] = {}
    own = [0.0] * len(units)
    rec_steps: list[int] = []
    rec_x: list[np.ndarray] = []
    done = 0
    clock = time.perf_counter
    t0, c0 = clock(), time.process_time()
    for t in range(steps):
        if t % every == 0:
            rec_steps.append(t)
            rec_x.append(x.astype(np.float64))
        with np.errstate(all="ignore"):  # rows of a method that left may hold non-finite values
            J = batch_grads(x, scale, values=True)
        J32, L32 = J[:, :, :2].astype(F32), J[:, :, 2].astype(F32)
        g = np.zeros_like(x)
        xn = x.copy()
        for i in list(live):
            (u, ms), r, ta = units[i], spans[i], clock()
            try:
                if u.uses_adam:
                    g[r] = u.direction(J32[r], L32[r])
                else:
                    xn[r] = u.advance(x[r], J32[r], L32[r])
            except LeaveFastPath:
                live.remove(i)
                left.update(dict.fromkeys(ms, B * done))
                g[r] = 0.0
            own[i] += clock() - ta
        if adam.m.size:
            xn[by_adam] = adam.step(x[by_adam], g[by_adam])
        x = xn
        n_live = sum(spans[i].stop - spans[i].start for i in live)
        if progress is not None and (t + 1) % 1000 == 0:
            progress(n_live * (t + 1 - done))
            done = t + 1
    if progress is not None and done < steps:
        progress(sum(spans[i].stop - spans[i].start for i in live) * (steps - done))
    wall, cpu = clock() - t0, time.process_time() - c0
    shared = max(wall - sum(own), 0.0) / len(methods)
    rec = np.asarray(rec_x)
    out = {}
    for (u, ms), sp, mine in zip(units, spans, own):
        stats = u.stats()
        for m in ms:
            r = rows[m]
            sec = mine / len(ms) + shared
            out[m] = BatchResult(final=x[r].astype(np.float64), rec_x=rec[:, r],
                                 stats=stats[r.start - sp.start : r.stop - sp.start], seconds=sec,
                                 cpu_seconds=cpu * sec / wall if wall > 0 else 0.0,
                                 left=m in left, reported=left.get(m, 0))  # fmt: skip
    return rec_steps, out
