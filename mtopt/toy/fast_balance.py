"""The toy fast path of the two methods that solve ``Gα = 1/α``: Nash-MTL and PUB.

Both take α from :class:`mtopt.optim.balance.Balance` on the per-run path: a solve every step
through :func:`mtopt.solvers.solve` (``validate="light"``) with the ``newton`` backend,
warm-started from the last α, the last α kept when a solve is not ``ok`` (no α yet: Nash-MTL
steps on a zero gradient, PUB skips the shared step). Here the same policy runs on a batch of
``B`` points:

* ``G`` is formed in float64 from the float32 rows exactly as ``gram64`` does (two products,
  each exact, one rounding), scaled by ``‖G‖_F`` (``np.linalg.norm`` of each row's ``G``, the
  call Balance makes) for ``frobenius``;
* the solve (:func:`solve_rows`) does newton's scaling and start (``1/√Gᵢᵢ``, the warm start
  ``α₀/s``, the ray minimiser) vectorised with the same float64 operations, and runs newton's
  own iteration (:func:`mtopt.solvers.newton.iterate_unit`, the generated n = 2 code) per row:
  the same iterates, so the same α to the last bit. Any row off the common path (a zero or
  huge entry, an α newton flags, a residual not clearly below ``tol``) is solved by
  :func:`mtopt.solvers.solve` itself on that row, which sets the status;
* the rest is torch's float32 arithmetic written out (:mod:`mtopt.toy.fast_core`): Nash-MTL's
  ``c @ J``, its max-norm clip and ``torch.optim.Adam``; PUB's Adam per-task updates with the
  moments held (``addcmul``/``add(alpha=)`` as fused multiply-adds, bias corrections in
  float64), ``θ ← θ − lr·Dα`` and the moment feed with ``Σαᵢgᵢ``.

So trajectories, α and the counters equal the per-run path's bit for bit (tests/toy). A step
with a non-finite value raises :class:`LeaveFastPath`: the caller reruns the method on the
per-run path, which owns that policy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mtopt.solvers.base import DEFAULT_TOL
from mtopt.solvers.newton import MAX_W, iterate_unit
from mtopt.solvers.validate import MAX_ENTRY, ZERO_DIAG
from mtopt.toy.fast_core import F32, Adam32, combine32, fma32, sqrt32

_TINY32 = F32(np.finfo(np.float32).tiny)


class LeaveFastPath(Exception):
    """A batch left the common path (a non-finite value): rerun it on the per-run path.

    ``reported``: the steps :func:`mtopt.toy.fast.run_batch` had already given to ``progress``.
    """

    reported = 0


def gram(D32: np.ndarray) -> np.ndarray:
    """``[B, 2, 2]`` float64 ``D Dᵀ`` of float32 rows ``D32`` ``[B, 2, 2]`` (each product exact
    in float64, two per entry: one rounding, whatever the summation order)."""
    D = D32.astype(np.float64)
    return np.einsum("bik,bjk->bij", D, D)


def solve_rows(G: np.ndarray, alpha0: np.ndarray, warm: np.ndarray, tol: float = DEFAULT_TOL
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(α [B, 2], ok [B])``: ``mtopt.solvers.solve(G[b], "newton", tol, validate="light",
    alpha0=alpha0[b] if warm[b])`` for every row, with newton's own iteration (module doc)."""
    B = G.shape[0]
    g11, g12, g22 = G[:, 0, 0], G[:, 0, 1], G[:, 1, 1]
    odd = ~((np.minimum(g11, g22) >= ZERO_DIAG) & (np.abs(G).max(axis=(1, 2)) <= MAX_ENTRY))
    with np.errstate(all="ignore"):
        s1, s2 = 1.0 / np.sqrt(g11), 1.0 / np.sqrt(g22)
        off = g12 * s1 * s2
        a0 = np.where(warm[:, None], alpha0, 1.0)
        usable = warm & np.isfinite(a0).all(axis=1) & (a0 > 0).all(axis=1)
        w1 = np.where(usable, a0[:, 0] / s1, 1.0)
        w2 = np.where(usable, a0[:, 1] / s2, 1.0)
        q_cold = 2.0 + 2.0 * off
        q_warm = (w1 * w1 + w2 * w2) + 2.0 * off * w1 * w2
        q = np.where(warm, q_warm, q_cold)
        r = np.sqrt(2.0 / q)
        w1, w2 = w1 * r, w2 * r
    odd |= ~(q > 2e-28)
    alpha = np.empty((B, 2))
    ok = np.zeros(B, dtype=bool)
    for b in range(B):
        if odd[b]:
            continue
        (v1, v2), _, flag = iterate_unit([float(off[b])], [float(w1[b]), float(w2[b])],
                                         check=bool(warm[b]))  # fmt: skip
        if flag is not None or max(v1, v2) > MAX_W:
            odd[b] = True
            continue
        alpha[b, 0], alpha[b, 1] = float(s1[b]) * v1, float(s2[b]) * v2
    with np.errstate(all="ignore"):
        Ga = np.einsum("bij,bj->bi", G, alpha)
        res = np.abs(alpha * Ga - 1.0).max(axis=1)
    odd |= ~(res <= 0.25 * tol)  # near tol the certificate's own rounding decides: solve()
    for b in np.flatnonzero(odd):
        from mtopt.solvers import solve

        opts = {"alpha0": alpha0[b].copy()} if warm[b] else {}
        out = solve(G[b], solver="newton", tol=tol, validate="light", **opts)
        ok[b] = out.ok
        if out.ok:
            alpha[b] = out.alpha
    ok[~odd] = True
    return alpha, ok


class BalanceRows:
    """Balance's policy for ``B`` rows: solve every step, warm start, fallback ``previous``."""

    def __init__(self, B: int, alpha_scale: str) -> None:
        self.scale = alpha_scale
        self.alpha = np.zeros((B, 2))
        self.has = np.zeros(B, dtype=bool)
        self.solves = np.zeros(B, dtype=np.int64)
        self.fallbacks = np.zeros(B, dtype=np.int64)
        self.skipped = np.zeros(B, dtype=np.int64)

    def weights(self, G: np.ndarray) -> np.ndarray:
        """α for every row (rows with ``has`` False after the call: no α, skip)."""
        if not np.isfinite(G).all():
            raise LeaveFastPath("non-finite G")
        if self.scale == "frobenius":
            fro = np.array([float(np.linalg.norm(g)) for g in G])
            G = G / np.where(fro > 0, fro, 1.0)[:, None, None]  # Balance: only when fro > 0
        alpha, ok = solve_rows(G, self.alpha, self.has)
        self.solves += 1
        self.fallbacks += ~ok
        self.skipped += ~ok & ~self.has
        self.alpha = np.where(ok[:, None], alpha, self.alpha)
        self.has |= ok
        return self.alpha


class NashBatch:
    """Nash-MTL (``max_norm`` clip, frobenius α) + ``torch.optim.Adam`` on a batch of points."""

    def __init__(self, x0: np.ndarray, lr: float, scale: float, max_norm: float = 1.0) -> None:
        self.x = x0
        self.scale = scale
        self.max_norm = float(max_norm)
        self.balance = BalanceRows(x0.shape[0], "frobenius")
        self.adam = Adam32(x0.shape, lr)

    def step(self) -> None:
        from mtopt.toy.fast_core import batch_grads

        J32 = batch_grads(self.x, self.scale).astype(F32)
        alpha = self.balance.weights(gram(J32))
        d = combine32(alpha.astype(F32), J32)
        d[~self.balance.has] = 0.0  # no α yet: the per-run path steps on a zero gradient
        if self.max_norm > 0:
            d64 = d.astype(np.float64)
            norm = np.sqrt(d64[:, 0] * d64[:, 0] + d64[:, 1] * d64[:, 1])
            clip = norm > self.max_norm
            if clip.any():
                s = (self.max_norm / (norm + 1e-6)).astype(F32)
                d = np.where(clip[:, None], d * s[:, None], d)
        if not np.isfinite(d).all():
            raise LeaveFastPath("non-finite direction")
        self.x = self.adam.step(self.x, d)

    def stats(self) -> list[dict[str, Any]]:
        return [{"fallbacks": int(f)} for f in self.balance.fallbacks]


class PubBatch:
    """PUB (Adam base rule, ``solve_every=1``, fallback ``previous``) on a batch of points."""

    def __init__(self, x0: np.ndarray, lr: float, scale: float, alpha_scale: str) -> None:
        B = x0.shape[0]
        self.x = x0
        self.lr, self.scale = float(lr), scale
        self.balance = BalanceRows(B, alpha_scale)
        self.m = np.zeros((B, 2), dtype=F32)
        self.v = np.zeros((B, 2), dtype=F32)
        self.t = np.zeros(B, dtype=np.int64)  # applied shared steps (bias correction)
        self.steps = 0
        self.last: list[list[float] | None] = [None] * B
        self.b1, self.b2, self.eps = 0.9, 0.999, 1e-8

    def _directions(self, g: np.ndarray) -> np.ndarray:
        """``[B, 2 tasks, 2]`` Adam per-task updates with the moments held (``rules.Adam``)."""
        b1, b2 = self.b1, self.b2
        out = fma32(F32(1.0 - b2) * g, g, ((self.v * F32(b2)) + _TINY32)[:, None, :])
        # Python's float powers per row, as the per-run path computes them (not numpy's pow)
        sq_bc2 = np.array([math.sqrt(1.0 - b2**k) for k in (self.t + 1).tolist()])
        sc = sq_bc2 / np.array([1.0 - b1**k for k in (self.t + 1).tolist()])
        out = sqrt32(out) + (self.eps * sq_bc2).astype(F32)[:, None, None]
        held = self.m * (b1 * sc).astype(F32)[:, None]
        work = fma32(((1.0 - b1) * sc).astype(F32)[:, None, None], g, held[:, None, :])
        return work / out

    def step(self) -> None:
        from mtopt.toy.fast_core import batch_grads

        self.steps += 1
        g = batch_grads(self.x, self.scale).astype(F32)
        D = self._directions(g)
        if not (np.isfinite(D).all() and np.isfinite(g).all()):
            raise LeaveFastPath("non-finite update")
        alpha = self.balance.weights(gram(D))
        live = self.balance.has
        a32 = alpha.astype(F32)
        u = combine32(a32, D)
        ghat = combine32(a32, g)
        if not (np.isfinite(u).all() and np.isfinite(ghat).all()):
            raise LeaveFastPath("non-finite step")
        x = fma32(F32(-self.lr), u, self.x)
        m = fma32(F32(1.0 - self.b1), ghat - self.m, self.m)
        v = fma32(F32(1.0 - self.b2) * ghat, ghat, self.v * F32(self.b2))
        keep = live[:, None]
        self.x = np.where(keep, x, self.x)
        self.m = np.where(keep, m, self.m)
        self.v = np.where(keep, v, self.v)
        self.t += live
        self.last = [[float(a) for a in alpha[b]] if live[b] else None for b in range(len(live))]

    def stats(self) -> list[dict[str, Any]]:
        bal = self.balance
        return [
            {
                "steps": self.steps,
                "solves": int(bal.solves[b]),
                "reuses": 0,
                "fallbacks": int(bal.fallbacks[b]),
                "skipped": int(bal.skipped[b]),
                "nonfinite": 0,
                "final_alpha": self.last[b],
            }
            for b in range(self.x.shape[0])
        ]
