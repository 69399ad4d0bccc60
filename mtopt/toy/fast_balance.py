"""The toy fast path of the two methods that solve ``Gα = 1/α``: Nash-MTL and PUB.

Both take α from :class:`mtopt.optim.balance.Balance` on the per-run path: a solve every step
through :func:`mtopt.solvers.solve` (``validate="light"``) with the ``newton`` backend,
warm-started from the last α, the last α kept when a solve is not ``ok`` (no α yet: Nash-MTL
steps on a zero gradient, PUB skips the shared step). Here the same policy runs on a batch of
``B`` points:

* ``G`` is formed in float64 from the float32 rows exactly as ``gram64`` does (two products,
  each exact, one rounding), scaled by ``‖G‖_F`` (``np.linalg.norm`` of each row's ``G``, the
  call Balance makes) for ``frobenius``;
* the solve (:func:`solve_rows`) runs newton's common path for n = 2 row by row in the same
  Python float operations (the scaling ``1/√Gᵢᵢ``, the start ``α₀/s`` or 1 moved to the ray
  minimiser) and newton's own iteration (:func:`mtopt.solvers.newton.iterate_unit`, the
  generated n = 2 code): the same iterates, so the same α to the last bit. A row off that
  path (a zero or huge entry, an α newton flags, a residual not clearly below ``tol``) is
  solved by :func:`mtopt.solvers.solve` itself, which sets the status;
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

from mtopt.solvers.base import DEFAULT_TOL, residual
from mtopt.solvers.newton import MAX_W, iterate_unit
from mtopt.solvers.validate import MAX_ENTRY, ZERO_DIAG
from mtopt.toy.fast_core import F32, combine32, fma32, sqrt32

_TINY32 = F32(np.finfo(np.float32).tiny)
_EPS = float(np.finfo(np.float64).eps)


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
    alpha0=alpha0[b] if warm[b])`` for every row, on newton's common path (module doc)."""
    B = G.shape[0]
    alpha = np.zeros((B, 2))
    ok = np.zeros(B, dtype=bool)
    a0s, warms = alpha0.tolist(), warm.tolist()
    for b, ((g11, g12), (_, g22)) in enumerate(G.tolist()):
        verdict, x1, x2 = _newton_2(g11, g12, g22, a0s[b] if warms[b] else None, tol)
        if verdict == "check":  # the certificate solve() computes, on the G it solves
            verdict = "ok" if residual(G[b], np.array([x1, x2])) <= tol else "fail"
        if verdict == "ok":
            ok[b], alpha[b, 0], alpha[b, 1] = True, x1, x2
        elif verdict == "solve":  # off the common path: solve() itself decides
            from mtopt.solvers import solve

            opts = {"alpha0": alpha0[b].copy()} if warms[b] else {}
            out = solve(G[b], solver="newton", tol=tol, validate="light", **opts)
            if out.ok:
                ok[b], alpha[b] = True, out.alpha
    return alpha, ok


def _newton_2(g11: float, g12: float, g22: float, alpha0: list[float] | None, tol: float
              ) -> tuple[str, float, float]:  # fmt: skip
    """newton's ``solve`` for a 2×2 ``G`` (as :func:`mtopt.solvers.solve` calls it) on its
    common path: the scaling to unit diagonal, the start (``α₀/s`` or 1, moved to the ray
    minimiser) and :func:`iterate_unit`, in the same Python float operations. Returns
    ``(verdict, α₁, α₂)``: ``ok`` (status ``ok``), ``fail`` (``pareto_stationary`` or
    ``not_converged``), ``check`` (α is newton's, but its residual is within rounding of
    ``tol``: :func:`mtopt.solvers.base.residual` decides, as solve() does) or ``solve`` (only
    :func:`mtopt.solvers.solve` can tell: a zero or huge entry, a Newton matrix flagged)."""
    if not (min(g11, g22) >= ZERO_DIAG and max(abs(g11), abs(g12), abs(g22)) <= MAX_ENTRY):
        return "solve", 0.0, 0.0
    s1, s2 = 1.0 / math.sqrt(g11), 1.0 / math.sqrt(g22)
    off = g12 * s1 * s2
    if not abs(off) <= 1.0 + 1e-9:  # solve()'s deferred PSD check could fail: let it decide
        return "solve", 0.0, 0.0
    if alpha0 is None:
        w1 = w2 = 1.0
        q = 2.0 + 2.0 * off
    else:
        a1, a2 = alpha0
        good = math.isfinite(a1) and math.isfinite(a2) and a1 > 0 and a2 > 0
        w1, w2 = (a1 / s1, a2 / s2) if good else (1.0, 1.0)
        q = (w1 * w1 + w2 * w2) + 2.0 * off * w1 * w2  # _quad: fsum of two = their sum
    if not q > 2e-28:
        return "fail", 0.0, 0.0  # 0 in the convex hull of the columns: pareto_stationary
    r = math.sqrt(2.0 / q)
    (v1, v2), _, flag = iterate_unit([off], [w1 * r, w2 * r], check=alpha0 is not None)
    if flag == "stationary" or max(v1, v2) > MAX_W:
        return "fail", 0.0, 0.0  # α diverges: pareto_stationary
    if flag is not None or not (v1 > 0 and v2 > 0):
        return "solve", 0.0, 0.0
    x1, x2 = s1 * v1, s2 * v2
    t1, t2 = x1 * (g11 * x1 + g12 * x2), x2 * (g12 * x1 + g22 * x2)
    res = max(abs(t1 - 1.0), abs(t2 - 1.0))
    # solve()'s certificate (numpy's G @ α) may round differently: decide only outside that
    slack = 8.0 * _EPS * max(abs(x1) * (abs(g11 * x1) + abs(g12 * x2)),
                             abs(x2) * (abs(g12 * x1) + abs(g22 * x2)), 1.0)  # fmt: skip
    if res + slack <= tol:
        return "ok", x1, x2
    return ("fail" if res - slack > tol else "check"), x1, x2  # fail: not_converged


class BalanceRows:
    """Balance's policy for ``B`` rows: solve every step, warm start, fallback ``previous``;
    ``alpha_scale`` one for all rows or one per row."""

    def __init__(self, B: int, alpha_scale: str | list[str]) -> None:
        scales = [alpha_scale] * B if isinstance(alpha_scale, str) else list(alpha_scale)
        self.frob = [sc == "frobenius" for sc in scales]
        self.alpha = np.zeros((B, 2))
        self.has = np.zeros(B, dtype=bool)
        self.solves = np.zeros(B, dtype=np.int64)
        self.fallbacks = np.zeros(B, dtype=np.int64)
        self.skipped = np.zeros(B, dtype=np.int64)

    def weights(self, G: np.ndarray) -> np.ndarray:
        """α for every row (rows with ``has`` False after the call: no α, skip)."""
        if not np.isfinite(G).all():
            raise LeaveFastPath("non-finite G")
        if any(self.frob):  # Balance's own call, row by row; only when ‖G‖_F > 0
            fro = [float(np.linalg.norm(g)) if f else 1.0 for g, f in zip(G, self.frob)]
            G = G / np.array([f if f > 0 else 1.0 for f in fro])[:, None, None]
        alpha, ok = solve_rows(G, self.alpha, self.has)
        self.solves += 1
        self.fallbacks += ~ok
        self.skipped += ~ok & ~self.has
        self.alpha = np.where(ok[:, None], alpha, self.alpha)
        self.has |= ok
        return self.alpha


class NashBatch:
    """Nash-MTL's direction (frobenius α, ``max_norm`` clip) for a batch; Adam is the caller's."""

    uses_adam = True

    def __init__(self, B: int, max_norm: float = 1.0) -> None:
        self.max_norm = float(max_norm)
        self.balance = BalanceRows(B, "frobenius")

    def direction(self, J32: np.ndarray, L32: np.ndarray) -> np.ndarray:
        """``[B, 2]`` float32 gradient handed to ``torch.optim.Adam``."""
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
        return d

    def stats(self) -> list[dict[str, Any]]:
        return [{"fallbacks": int(f)} for f in self.balance.fallbacks]


class PubBatch:
    """PUB (Adam base rule, ``solve_every=1``, fallback ``previous``) on a batch of points
    (``alpha_scale``: one for all rows, or one per row)."""

    uses_adam = False

    def __init__(self, B: int, lr: float, alpha_scale: str | list[str]) -> None:
        self.lr = float(lr)
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
        ts = (self.t + 1).tolist()
        sq_bc2 = np.array([math.sqrt(1.0 - b2**k) for k in ts])
        sc = sq_bc2 / np.array([1.0 - b1**k for k in ts])
        out = sqrt32(out) + (self.eps * sq_bc2).astype(F32)[:, None, None]
        held = self.m * (b1 * sc).astype(F32)[:, None]
        work = fma32(((1.0 - b1) * sc).astype(F32)[:, None, None], g, held[:, None, :])
        return work / out

    def advance(self, x: np.ndarray, g: np.ndarray, L32: np.ndarray) -> np.ndarray:
        """One PUB step from the points ``x`` with the float32 task gradients ``g``."""
        self.steps += 1
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
        xn = fma32(F32(-self.lr), u, x)  # _foreach_add_(θ, u, alpha=−lr)
        m = fma32(F32(1.0 - self.b1), ghat - self.m, self.m)
        v = fma32(F32(1.0 - self.b2) * ghat, ghat, self.v * F32(self.b2))
        keep = live[:, None]  # no α (no solve ok yet): no shared step, no moment feed
        self.m = np.where(keep, m, self.m)
        self.v = np.where(keep, v, self.v)
        self.t += live
        self.last = [[float(a) for a in alpha[b]] if live[b] else None for b in range(len(live))]
        return np.where(keep, xn, x)

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
            for b in range(len(self.last))
        ]
