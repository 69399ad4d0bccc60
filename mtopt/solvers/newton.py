"""Exact damped Newton solver for PUB's balancing equation (the default backend).

``G α = 1/α, α > 0`` is the stationarity condition of the strictly convex

    f(α) = ½ αᵀGα − Σᵢ log αᵢ ,     ∇f = Gα − 1/α ,     ∇²f = G + diag(1/α²) ≻ 0

(DESIGN §2.1; the equation is Claim 1 of Yuan et al., "A Parameter Update Balancing Algorithm
for Multi-task Ranking Models in Recommendation Systems", ICDM 2024, and eq. (1)-(2) of Navon
et al., "Multi-Task Learning as a Bargaining Game", ICML 2022). The minimiser is unique when it
exists; it does not exist exactly when 0 lies in the convex hull of some columns of D
(f is then unbounded below along a direction u ≥ 0 with Gu = 0).

We solve on the unit-diagonal ``C = SGS`` (``S = diag(1/√Gᵢᵢ)``) and return ``α = S w``, which
is exact by the scaling law ``α(SGS) = S⁻¹α(G)`` (DESIGN §2.2). The start is the minimiser of f
along the ray ``t·1`` (or along a warm start ``alpha0``); steps are damped so that w stays
positive (fraction-to-the-boundary 0.99) with Armijo backtracking, switching to full steps once
the Newton decrement is small (quadratic convergence, where f itself no longer resolves
progress in float64). Iteration stops at residual ≤ 1e-14·n or when the residual stops falling.

Implementation notes (speed — small n is the common case, and numpy's per-call overhead,
~1 µs, dominates a 5×5 problem; the iterates are those of the plain algorithm above):

* The Newton system ``(C + W⁻²) Δw = 1/w − Cw`` is written in the scaled variable
  ``Δw = W y``: ``(WCW + I) y = 1 − w∘Cw``. That matrix is ⪰ I, the right-hand side is the
  residual vector itself, the Newton decrement is ``λ² = (1 − w∘Cw)ᵀy`` and a step keeps
  ``w > 0`` iff ``1 + t·yᵢ > 0``. (The code solves the unscaled form, whose matrix differs
  from ``C`` only on the diagonal; the step is the same.)
* ``f`` is self-concordant (a quadratic plus a log barrier; Nesterov & Nemirovski), so for
  ``λ ≤ ¼`` the full step stays positive (``‖y‖₂ ≤ λ``) and passes the Armijo test (``f`` drops
  by ≥ 0.4 λ²): the line search is skipped there because it would accept ``t = 1`` anyway.
  Otherwise the Armijo test uses the exact closed form
  ``f(w + tWy) − f(w) = t·yᵀg + ½t²(λ² − yᵀy) − Σ log(1 + t·yᵢ)`` with ``g = w∘Cw``.
* The residual is not re-measured after every step: a full step with decrement ``λ²`` leaves
  a residual of about ``λ²`` (observed 0.2–1 × λ²) and a damped step (``λ² > 1/16``) leaves
  one far above target, so the residual is measured (and the stopping and stall tests
  applied) after full steps with ``λ² ≤ 10·target``, and at a warm start. Stopping is thus
  never earlier than with a test after every step; the returned α is always certified by
  its measured residual.
* For n ≤ :data:`UNROLL_MAX_N` the iteration runs as straight-line Python float code generated
  once per n (unrolled Cholesky of ``C + W⁻²``; no numpy call inside the loop). For larger n it
  runs on numpy (about eight calls per iteration), calling numpy's LAPACK ``gesv`` gufunc
  directly.
* ``seconds`` covers computing α (the scaling included); the residual certificate on the
  caller's ``G`` is computed after the clock stops, as :func:`mtopt.solvers.solve` does for
  every backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mtopt.solvers.base import DEFAULT_TOL, SolveResult, residual

#: |w|∞ beyond which (on the unit-diagonal problem) we declare the point Pareto-stationary:
#: w ~ 1/√(1+cos) for two tasks, so 1e7 means 1 + cos ≈ 1e-14, at float64's resolution.
MAX_W = 1e7
#: Newton decrement² at or below which the full step is taken without line search
FULL_STEP_LAMBDA2 = 0.0625
#: re-measure the residual after a full step once λ² ≤ PREDICT·target (residual ≈ 0.2–1 × λ²)
PREDICT = 10.0
#: largest n solved by the generated straight-line float code (numpy is faster beyond)
UNROLL_MAX_N = 9

try:  # numpy's LAPACK gesv gufunc without np.linalg.solve's Python-level checks (~3 µs/call)
    from numpy.linalg import _umath_linalg as _ul

    def _lin_solve(M: np.ndarray, b: np.ndarray) -> np.ndarray:
        return _ul.solve1(M, b, signature="dd->d")

    _lin_solve(np.eye(2), np.ones(2))
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other numpy layouts
    _lin_solve = np.linalg.solve

_max = np.maximum.reduce  # ndarray.max() without its Python-level wrapper
_sum = np.add.reduce
_ONES: dict[int, np.ndarray] = {}


def _ones(n: int) -> np.ndarray:
    """A cached, read-only ones(n) (cheaper than np.ones' Python wrapper)."""
    v = _ONES.get(n)
    if v is None:
        v = _ONES[n] = np.ones(n)
        v.flags.writeable = False
    return v


def _armijo(y: list[float], g: list[float], lam2: float) -> float:
    """Step length along ``w ← w∘(1 + t·y)``: fraction-to-the-boundary 0.99, then Armijo
    backtracking (sufficient decrease 1e-4) on the closed form of ``f(w + tWy) − f(w)``."""
    t = 1.0
    ymin = min(y)
    if ymin < 0.0:
        t = min(1.0, -0.99 / ymin)
    if lam2 > 1e-12:
        yg = math.fsum([a * b for a, b in zip(y, g)])
        yy = math.fsum([a * a for a in y])
        log1p = math.log1p
        while t > 1e-14:
            df = t * yg + 0.5 * t * t * (lam2 - yy) - math.fsum([log1p(t * b) for b in y])
            if df <= -1e-4 * t * lam2:
                break
            t *= 0.5
    return t


def _newton_np(
    C: np.ndarray, w: np.ndarray, max_iter: int, check: bool = True
) -> tuple[np.ndarray, int, str | None]:
    """Damped Newton on the unit-diagonal problem with numpy.

    The Hessian ``C + W⁻²`` shares its off-diagonal with ``C``, so it lives in one buffer
    whose diagonal view is refreshed per iteration (fewer numpy calls than forming
    ``WCW + I``; the same Newton step ``Δw = W y``).

    Returns ``(w, iterations, flag)``; flag is None, ``"stationary"`` (w diverges) or
    ``"indefinite"`` (the Newton matrix lost definiteness: G not PSD at float64 resolution).
    ``check`` measures the residual of the start (worth it for a warm start only).
    """
    n = C.shape[0]
    H = C.copy()
    hdiag = H.reshape(-1)[:: n + 1]  # writable view of H's diagonal
    target = 1e-14 * n
    pred = PREDICT * target
    dot = np.dot
    mul = np.multiply
    best = math.inf
    stall = 0
    it = 0
    while True:
        Cw = dot(C, w)
        iw = 1.0 / w
        grad = Cw - iw
        if check:
            r = float(_max(abs(w * grad)))  # w∘(Cw − 1/w) = w∘Cw − 1
            if r <= target:
                return w, it, None
            if r < best * 0.5:
                best, stall = r, 0
            else:
                stall += 1
                if stall >= 6 and r <= 1e-9:
                    return w, it, None  # float64 floor reached
            check = False
        if it >= max_iter:
            return w, it, None
        it += 1
        mul(iw, iw, out=hdiag)
        hdiag += 1.0  # H = C + W⁻² (C has a unit diagonal)
        dx = _lin_solve(H, grad)  # the Newton step is −dx
        lam2 = float(dot(grad, dx))
        if lam2 == 0.0 and not _max(abs(grad)):
            return w, it - 1, None  # the gradient is exactly 0: w solves the equation
        if not 0.0 < lam2 < math.inf:
            return w, it - 1, "indefinite"
        if lam2 <= FULL_STEP_LAMBDA2:
            w = w - dx
            if lam2 <= pred:
                check = True
            continue
        # a damped step (λ² > 1/16) cannot land within target: no residual check after it
        y = -dx * iw
        t = _armijo(y.tolist(), (w * Cw).tolist(), lam2)
        w = w - t * dx
        if float(_max(w)) > MAX_W:
            return w, it, "stationary"


def _unrolled_source(n: int) -> str:
    """Source of the straight-line float version of :func:`_newton_np` for one n.

    Same iteration on scalars: ``q = Cw``; Newton matrix ``H = C + W⁻²`` (constant
    off-diagonal ``C``), factored by an unrolled Cholesky ``H = LLᵀ`` (``u = 1/diag(L)``);
    ``x = H⁻¹(Cw − 1/w)`` and the step is ``w ← w − t·x``.
    """
    idx = range(n)
    offs = [(i, j) for i in idx for j in idx if i < j]

    def c(i: int, j: int) -> str:
        return f"c{min(i, j)}_{max(i, j)}"

    wl = "[" + ", ".join(f"w{i}" for i in idx) + "]"
    lines = [f"def newton_{n}(C, w, max_iter, target, pred, armijo, check):"]
    a = lines.append
    if offs:
        a("    (" + ", ".join(f"c{i}_{j}" for i, j in offs) + ",) = C")
    a("    (" + ", ".join(f"w{i}" for i in idx) + ",) = w")
    a("    best = inf")
    a("    stall = 0")
    a("    it = 0")
    a("    while True:")
    for i in idx:
        terms = [f"w{i}"] + [f"{c(i, j)} * w{j}" for j in idx if j != i]
        a(f"        q{i} = {' + '.join(terms)}")
    a("        if check:")
    a("            r = max(" + ", ".join(f"abs(w{i} * q{i} - 1.0)" for i in idx) + ", 0.0)")
    a(f"            if r <= target: return {wl}, it, None")
    a("            if r < best * 0.5:")
    a("                best = r")
    a("                stall = 0")
    a("            else:")
    a("                stall += 1")
    a(f"                if stall >= 6 and r <= 1e-9: return {wl}, it, None")
    a("            check = False")
    a(f"        if it >= max_iter: return {wl}, it, None")
    a("        it += 1")
    for i in idx:
        a(f"        v{i} = 1.0 / w{i}")
        a(f"        g{i} = q{i} - v{i}")
    for i in idx:  # Cholesky of H = C + W⁻²
        for j in range(i):
            expr = c(i, j) + "".join(f" - l{i}_{k} * l{j}_{k}" for k in range(j))
            a(f"        l{i}_{j} = ({expr}) * u{j}")
        expr = f"1.0 + v{i} * v{i}" + "".join(f" - l{i}_{k} * l{i}_{k}" for k in range(i))
        a(f"        p = {expr}")
        a(f"        if not p > 0.0: return {wl}, it - 1, 'indefinite'")
        a(f"        u{i} = 1.0 / sqrt(p)")
    for i in idx:
        expr = f"g{i}" + "".join(f" - l{i}_{k} * z{k}" for k in range(i))
        a(f"        z{i} = ({expr}) * u{i}")
    for i in reversed(idx):
        expr = f"z{i}" + "".join(f" - l{k}_{i} * x{k}" for k in range(i + 1, n))
        a(f"        x{i} = ({expr}) * u{i}")
    a("        lam2 = " + " + ".join(f"g{i} * x{i}" for i in idx))
    a("        if lam2 == 0.0 and not (" + " or ".join(f"g{i}" for i in idx) + "):")
    a(f"            return {wl}, it - 1, None")
    a(f"        if not 0.0 < lam2 < inf: return {wl}, it - 1, 'indefinite'")
    a(f"        if lam2 <= {FULL_STEP_LAMBDA2!r}:")
    for i in idx:
        a(f"            w{i} = w{i} - x{i}")
    a("            if lam2 <= pred: check = True")
    a("            continue")
    ys = "[" + ", ".join(f"-x{i} * v{i}" for i in idx) + "]"
    gs = "[" + ", ".join(f"w{i} * q{i}" for i in idx) + "]"
    a(f"        t = armijo({ys}, {gs}, lam2)")
    for i in idx:
        a(f"        w{i} = w{i} - t * x{i}")
    a("        if max(" + ", ".join(f"w{i}" for i in idx) + f", 0.0) > {MAX_W!r}:")
    a(f"            return {wl}, it, 'stationary'")
    return "\n".join(lines) + "\n"


_UNROLLED: dict[int, Callable[..., Any]] = {}


def _unrolled(n: int) -> Callable[..., Any]:
    """The generated straight-line solver for ``n`` (built once per process)."""
    fn = _UNROLLED.get(n)
    if fn is None:
        namespace: dict[str, Any] = {"sqrt": math.sqrt, "inf": math.inf}
        exec(compile(_unrolled_source(n), f"<mtopt.newton unrolled n={n}>", "exec"), namespace)
        fn = _UNROLLED[n] = namespace[f"newton_{n}"]
    return fn


def _newton_unrolled(
    C: np.ndarray, w: np.ndarray, max_iter: int, check: bool = True
) -> tuple[np.ndarray, int, str | None]:
    """:func:`_newton_np` through the generated float code (same iterates up to rounding)."""
    n = C.shape[0]
    iu = np.triu_indices(n, 1)
    target = 1e-14 * n
    wl, it, flag = _unrolled(n)(
        C[iu].tolist(), w.tolist(), max_iter, target, PREDICT * target, _armijo, check
    )
    return np.array(wl), it, flag


def iterate_unit(
    off: list[float], w: list[float], *, check: bool, max_iter: int = 100
) -> tuple[list[float], int, str | None]:
    """The Newton iteration :func:`solve` runs for ``n ≤ UNROLL_MAX_N`` (the generated code).

    ``off``: the upper off-diagonal entries (row-major) of the unit-diagonal ``C``; ``w``: the
    start, already scaled to the minimiser of f along its ray; ``check``: measure the start's
    residual (a warm start). Returns ``(w, iterations, flag)`` as :func:`_newton_np`. Public so
    that a caller solving many small problems at once (the toy's fast path) can do the scaling
    itself, vectorised, and still run the very same iteration.
    """
    n = len(w)
    target = 1e-14 * n
    return _unrolled(n)(off, w, max_iter, target, PREDICT * target, _armijo, check)


def solve(
    G: np.ndarray,
    *,
    tol: float = DEFAULT_TOL,
    alpha0: np.ndarray | None = None,
    max_iter: int = 100,
) -> SolveResult:
    """Solve ``Gα = 1/α`` by damped Newton; see the module docstring.

    Args:
        G: validated symmetric PSD float64 matrix with positive diagonal (see
            :func:`mtopt.solvers.solve`, which checks this).
        tol: residual at or below which the result counts as ``ok`` (Newton iterates further
            anyway, to float64 precision; this only sets the status).
        alpha0: optional warm start (e.g. the previous step's α); its direction is used.
        max_iter: iteration cap.
    """
    n = G.shape[0]
    compile_seconds = 0.0
    if n <= UNROLL_MAX_N and n not in _UNROLLED:
        tc = time.perf_counter()
        _unrolled(n)  # one-time code generation, reported like a compilation
        compile_seconds = time.perf_counter() - tc
    t0 = time.perf_counter()
    flag: str | None = None
    it = 0
    if n <= UNROLL_MAX_N:
        # scaling and start on Python floats: cheaper than numpy calls for a few entries
        rows = G.tolist()
        sl = [1.0 / math.sqrt(rows[i][i]) for i in range(n)]
        off = [rows[i][j] * sl[i] * sl[j] for i in range(n) for j in range(i + 1, n)]
        if alpha0 is None:
            wl = [1.0] * n
            q = n + 2.0 * math.fsum(off)
        else:
            wl = _start(alpha0, sl, n)
            q = _quad(off, wl)
        if q > 1e-28 * n:
            wl = [x * math.sqrt(n / q) for x in wl]  # minimiser of f along the ray
            wl, it, flag = iterate_unit(off, wl, check=alpha0 is not None, max_iter=max_iter)
        alpha = np.array([a * b for a, b in zip(sl, wl)])
        seconds = time.perf_counter() - t0
        diverged = max(wl) > MAX_W
        s, w = np.array(sl), np.array(wl)
    else:
        s = 1.0 / np.sqrt(G.diagonal())
        C = (G * s[:, None]) * s  # unit diagonal up to an ulp; H's diagonal is set anyway
        if alpha0 is None:
            w = _ones(n)
            q = float(_sum(C, axis=None))
        else:
            w = np.array(_start(alpha0, s.tolist(), n))
            q = float(w @ C @ w)
        if q > 1e-28 * n:
            w, it, flag = _newton_np(C, w * math.sqrt(n / q), max_iter, alpha0 is not None)
        alpha = s * w
        seconds = time.perf_counter() - t0
        diverged = float(_max(w)) > MAX_W
    if not q > 1e-28 * n or flag == "stationary" or diverged:
        C = (G * s[:, None]) * s
        np.fill_diagonal(C, 1.0)
        u = w / w.sum()
        info: dict[str, Any] = {"hull_upper": float(u @ C @ u)}
        if not q > 1e-28 * n:
            info.update(reason="0 in the convex hull of the columns", direction=u.tolist())
        else:
            info["reason"] = "alpha diverges: 0 is (numerically) in the convex hull of the columns"
        return SolveResult(
            None, None, it, seconds, "pareto_stationary", "newton", compile_seconds, info
        )
    info = {}
    res = residual(G, alpha)
    status = "ok" if res <= tol else "not_converged"
    if flag == "indefinite" and status != "ok":  # an ok α is certified: nothing to explain
        info["reason"] = "Newton matrix lost definiteness: G is not PSD at float64 resolution"
    return SolveResult(alpha, res, it, seconds, status, "newton", compile_seconds, info)


def _start(alpha0: Any, s: list[float], n: int) -> list[float]:
    """Warm start in unit-diagonal coordinates (``alpha0 / s``), or 1 if unusable."""
    a = np.asarray(alpha0, dtype=np.float64).reshape(-1)
    if a.shape != (n,) or not np.all(np.isfinite(a)) or np.any(a <= 0):
        return [1.0] * n
    return [x / y for x, y in zip(a.tolist(), s)]


def _quad(off: list[float], w: list[float]) -> float:
    """``wᵀCw`` for unit-diagonal C given by its upper off-diagonal entries (row-major)."""
    n = len(w)
    total = math.fsum([x * x for x in w])
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            total += 2.0 * off[k] * w[i] * w[j]
            k += 1
    return total
