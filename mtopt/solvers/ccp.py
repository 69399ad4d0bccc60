"""The PUB paper's concave–convex procedure (CCP) in CVXPY (ECOS, or Clarabel with
``conic="clarabel"``, see :mod:`mtopt.solvers.conic`): backend ``ccp`` (and the
shared implementation of ``ccp-raw``, whose entry point and the authors'-procedure replica live
in :mod:`mtopt.solvers.ccp_paper`).

Yuan, Cai & Dong, "A Parameter Update Balancing Algorithm for Multi-task Ranking Models in
Recommendation Systems", ICDM 2024, Sec. V-C, eq. (2)–(4). With ``φᵢ(α) = log αᵢ + log (Gα)ᵢ``
(eq. 2), the solution of ``Gα = 1/α`` is the point where every ``φᵢ = 0``. Eq. (3) minimises
``Σφᵢ`` subject to ``−φᵢ(α) ≤ 0`` (a convex constraint: ``φᵢ`` is concave); eq. (4), the CCP
step (Yuille & Rangarajan 2003; Lipp & Boyd 2016), replaces the concave objective by its
linearisation at the current iterate ``α⁽ᵗ⁾`` and keeps the constraints::

    α⁽ᵗ⁺¹⁾ = argmin_α  c(α⁽ᵗ⁾)ᵀα   s.t.  αᵢ (Gα)ᵢ ≥ 1 ,  α > 0 ,
    c(α) = ∇Σφᵢ(α) = 1/α + Gᵀ(1/(Gα)) .

Two registered variants (DESIGN §2.7), sharing one implementation:

* ``ccp`` — the best CVXPY engineering of eq. (3)–(4) we have:

  - ``G`` and the linear objective ``c`` are cvxpy Parameters, so the problem is DPP and is
    compiled once per ``n``, cone form and conic solver per process; the compile time is reported in
    ``SolveResult.compile_seconds`` and excluded from ``seconds``. Every later solve only
    re-applies the parameters (``problem.is_dpp()`` is asserted at compile time). ``c`` is
    computed in numpy from ``α⁽ᵗ⁾`` (``c(α)`` is not a DPP expression of an α Parameter).
  - It runs on the unit-diagonal ``C = SGS`` and returns ``α = S w`` (exact by the scaling
    law, DESIGN §2.2).
  - The constraint ``−φᵢ ≤ 0`` is posed in its equivalent hyperbolic form
    ``αᵢ(Gα)ᵢ ≥ 1`` ⟺ ``‖(2, αᵢ − (Gα)ᵢ)‖₂ ≤ αᵢ + (Gα)ᵢ`` (``cone="soc"``: one second-order
    cone per task instead of two exponential cones; the same feasible set, fewer and
    better-conditioned ECOS iterations).
  - Start: the caller's ``alpha0``, else the previous solve's α for this ``n`` (kept in the
    cache), else ``1``. The linearisation needs ``α > 0`` and ``Gα > 0``; if the start violates
    this (a stale warm start, or ``1`` for conflicting tasks), a DPP phase-I LP
    ``min 1ᵀv s.t. Gv ≥ 1, v ≥ 1`` supplies one. That LP is feasible iff ``Gα = 1/α`` has a
    solution (if ``Gu = 0`` for some ``u ≥ 0, u ≠ 0`` then ``uᵀGv = 0`` contradicts
    ``Gv ≥ 1``; conversely the solution itself, scaled up, is feasible), so its infeasibility
    certifies Pareto-stationarity. From a start with ``Gα > 0`` every subproblem is bounded
    below (``Σφ̃ ≥ Σφ ≥ 0`` on the feasible set).

* ``ccp-raw`` — the same CCP, literally on the raw ``G`` as the paper writes it (no
  unit-diagonal scaling; "start from 1" then means ``α = 1`` on the raw scale). In exact
  arithmetic the CCP step is invariant under the diagonal change of variables ``α = S w``
  (``c`` and the constraints transform together), so on benign input both variants take the
  same steps; they differ in conditioning (ECOS on column norms 1e-4…1e4) and in the start.

Options isolate each choice: ``cone="exp"`` poses the constraint with logs exactly as eq. (3)
writes it (two exponential cones per task), and ``phase1=False`` drops the phase-I start, so
``solve_raw(G, cone="exp", phase1=False)`` is the paper's procedure verbatim: from a start
outside the domain of the log terms it linearises anyway and the subproblem is typically
unbounded or ECOS fails (DESIGN §2.7); where the linearisation does not exist at all
(``(Gα)ᵢ = 0``) the first subproblem minimises ``1ᵀα`` over eq. (3)'s constraint set instead.

Both stop at residual ``maxᵢ|αᵢ(Gα)ᵢ − 1| ≤ tol``, when ``Σφ`` stops decreasing, or after
``max_iter = 200`` iterations (the paper's cap).

``ccp_paper.solve_raw(G, procedure="authors")`` instead reproduces, as our own code, what the
authors' public implementation of PUB does per α solve (a Nash-MTL-style CCP; Navon et al.,
"Multi-Task Learning as a Bargaining Game", ICML 2022, whose solver it adapts), for timing
comparisons; see :func:`mtopt.solvers.ccp_paper._authors_procedure`. It is not a different
solver of ours, and it does not use the cache, warm start, cone or phase-I options above.

Statuses: ``ok`` (residual ≤ tol); ``pareto_stationary`` when ECOS reports the constraint set
(or the phase-I LP) infeasible — the set ``{α > 0 : αᵢ(Gα)ᵢ ≥ 1}`` is empty exactly when there
is no solution; ``not_converged`` otherwise (including an ``unbounded`` subproblem, which can
only be numerical here), with cvxpy's status in ``info``. Solver exceptions
(``cvxpy.error.SolverError``) propagate. A missing ECOS (or Clarabel, when chosen) raises
:class:`~mtopt.errors.SolverUnavailableError` — never a silent fallback to equal weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtopt.errors import InputError, SolverUnavailableError
from mtopt.solvers import conic as conics
from mtopt.solvers.base import DEFAULT_TOL, SolveResult, residual, unit_diagonal

#: the paper's iteration cap
MAX_ITER = 200
#: largest task count the CVXPY backends accept (the catalog's ``max_n`` of ``ccp`` and
#: ``ccp-raw``): n = 200 takes ~1 s and ~250 MB, n = 400 ~5 s and 1.2 GB, n = 1000 minutes and
#: ~16 GB. Beyond it use ``newton`` (the same α, exact, milliseconds).
MAX_N = 200


def check_size(n: int, name: str) -> None:
    """Raise :class:`InputError` when ``n`` exceeds :data:`MAX_N` (a size guard, not a limit
    of the method: CVXPY's compile time and memory grow steeply with n)."""
    if n > MAX_N:
        raise InputError(
            f"solver: {name} accepts at most n = {MAX_N} tasks (CVXPY's time and memory grow "
            f"steeply with n), got n = {n}; use solver='newton' (exact, the same α)"
        )


CONES = ("soc", "exp")


def _import_cvxpy(conic: str = "ecos") -> Any:
    """Import cvxpy and make sure the conic solver is installed (cvxpy ≥ 1.6 no longer
    bundles ECOS)."""
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - cvxpy is a dependency
        raise SolverUnavailableError(
            f"solver: the ccp solvers need cvxpy ({exc}); install it with "
            "`pip install cvxpy ecos` or use solver='newton'"
        ) from None
    conics.require(cp, conic)
    return cp


@dataclass
class _Compiled:
    """One DPP problem (and its lazily built phase-I LP) for a given n, cone form and conic
    solver."""

    problem: Any
    alpha: Any
    G: Any
    c: Any
    compile_seconds: float
    phase1: Any = None
    phase1_v: Any = None
    phase1_G: Any = None
    last_alpha: dict[str, np.ndarray] = field(default_factory=dict)


#: compiled problems per (n, cone, conic solver)
_CACHE: dict[tuple[int, str, str], _Compiled] = {}
#: compiled problems of :mod:`mtopt.solvers.ccp_paper` (the authors' procedure), per n; kept
#: here so that :func:`clear_cache` forgets both
_AUTHORS: dict[int, Any] = {}


def clear_cache() -> None:
    """Forget every compiled problem and warm start (the next solve compiles again)."""
    _CACHE.clear()
    _AUTHORS.clear()


def _compile(n: int, cone: str, conic: str = "ecos") -> tuple[_Compiled, float]:
    """Return the compiled problem for (n, cone, conic) and the compile seconds paid by this
    call."""
    key = (n, cone, conic)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit, 0.0
    cp = _import_cvxpy(conic)
    t0 = time.perf_counter()
    a = cp.Variable(n, name="alpha")
    G = cp.Parameter((n, n), name="G")
    c = cp.Parameter(n, name="c")
    Ga = G @ a
    if cone == "exp":
        constraints = [-(cp.log(a) + cp.log(Ga)) <= 0]  # −φᵢ(α) ≤ 0, eq. (3)-(4)
    else:
        constraints = [cp.SOC(a + Ga, cp.vstack([np.full(n, 2.0), a - Ga]), axis=0)]
    problem = cp.Problem(cp.Minimize(c @ a), constraints)
    if not problem.is_dpp():  # pragma: no cover - a programming error, not a user error
        raise RuntimeError("ccp: the CCP subproblem is not DPP; it would recompile every solve")
    # first solve on a benign instance performs the (one-time) DPP compilation
    G.value = np.eye(n)
    c.value = np.full(n, 2.0)
    conics.solve_quiet(problem, conic, {})
    comp = _Compiled(problem, a, G, c, time.perf_counter() - t0)
    _CACHE[key] = comp
    return comp, comp.compile_seconds


def _phase1(
    comp: _Compiled, C: np.ndarray, conic: str, options: dict[str, Any]
) -> tuple[Any, float]:
    """A point v ≥ 1 with Cv ≥ 1, or None when the LP is infeasible (no solution exists).
    Returns (v or None, compile seconds paid)."""
    paid = 0.0
    if comp.phase1 is None:
        cp = _import_cvxpy(conic)
        t0 = time.perf_counter()
        n = C.shape[0]
        v = cp.Variable(n, name="v")
        Gp = cp.Parameter((n, n), name="G")
        lp = cp.Problem(cp.Minimize(cp.sum(v)), [Gp @ v >= 1, v >= 1])
        if not lp.is_dpp():  # pragma: no cover
            raise RuntimeError("ccp: phase-I LP is not DPP")
        Gp.value = np.eye(n)
        conics.solve_quiet(lp, conic, {})
        comp.phase1, comp.phase1_v, comp.phase1_G = lp, v, Gp
        paid = time.perf_counter() - t0
    comp.phase1_G.value = C
    conics.solve_quiet(comp.phase1, conic, options)
    if comp.phase1.status in ("infeasible", "infeasible_inaccurate"):
        return None, paid
    v = comp.phase1_v.value
    if v is None:
        return "failed", paid
    return np.asarray(v, dtype=np.float64), paid


def _sum_phi(C: np.ndarray, w: np.ndarray) -> float:
    Cw = C @ w
    if np.any(Cw <= 0) or np.any(w <= 0):
        return math.inf
    return float(np.sum(np.log(w)) + np.sum(np.log(Cw)))


def _ccp(
    G: np.ndarray,
    *,
    name: str,
    scale: bool,
    tol: float,
    alpha0: np.ndarray | None,
    max_iter: int,
    cone: str,
    warm_start: bool,
    phase1: bool,
    conic: str,
    conic_options: dict[str, Any] | None,
    ecos_options: dict[str, Any] | None,
) -> SolveResult:
    if cone not in CONES:
        raise InputError(f"cone: must be one of {CONES} ({name}), got {cone!r}")
    conic = conics.check_conic(conic, name)
    options = conics.settings(conic, conic_options, ecos_options)
    n = G.shape[0]
    check_size(n, name)
    comp, compile_seconds = _compile(n, cone, conic)
    t0 = time.perf_counter()
    if scale:
        C, s = unit_diagonal(G)
    else:
        C, s = G, np.ones(n)
    info: dict[str, Any] = {"cone": cone, "conic": conic, "scaled": scale, "phase1": phase1}

    # --- start: alpha0, else the previous α for this n, else 1; phase I if not in the domain
    candidates = []
    if alpha0 is not None:
        candidates.append(("alpha0", np.asarray(alpha0, dtype=np.float64).reshape(-1)))
    elif warm_start and name in comp.last_alpha:
        candidates.append(("previous", comp.last_alpha[name]))
    candidates.append(("ones", s.copy() if scale else np.ones(n)))
    w = None
    fallback = None  # first positive start, used literally when phase I is off
    for label, a0 in candidates:
        if a0.shape != (n,) or not np.all(np.isfinite(a0)) or np.any(a0 <= 0):
            continue
        w0 = a0 / s
        Cw0 = C @ w0
        if fallback is None:
            fallback = (label, w0, Cw0)
        if np.all(Cw0 > 1e-12 * np.abs(C).max(axis=1) * w0.max()):
            w, info["start"] = w0, label
            break
    first_c = None
    if w is None and not phase1 and fallback is not None:
        # literal eq. (4): linearise at the start even though some (Gα)ᵢ ≤ 0 there; the
        # subproblem is then typically unbounded (DESIGN §2.7), reported as not_converged.
        # Where the linearisation does not exist at all ((Gα)ᵢ = 0), the first subproblem
        # minimises 1ᵀα over eq. (3)'s constraint set instead (its infeasibility is the
        # Pareto-stationarity certificate, its solution a start in the domain).
        label, w, Cw0 = fallback
        info["start"], info["start_outside_domain"] = label, True
        if np.any(Cw0 == 0):
            first_c = np.ones(n)
    if w is None:
        v, paid = _phase1(comp, C, conic, options)
        compile_seconds += paid
        t0 += paid
        info["start"] = "phase-1"
        if v is None:
            info["reason"] = "phase-I LP infeasible: 0 is in the convex hull of the columns"
            return SolveResult(
                None, None, 0, time.perf_counter() - t0, "pareto_stationary", name,
                compile_seconds, info,
            )  # fmt: skip
        if isinstance(v, str):
            info["reason"] = f"phase-I LP failed (cvxpy status {comp.phase1.status})"
            return SolveResult(
                None, None, 0, time.perf_counter() - t0, "not_converged", name,
                compile_seconds, info,
            )  # fmt: skip
        w = v

    comp.G.value = C
    r = residual(C, w)
    phi = _sum_phi(C, w)
    it = 0
    status_note = None
    msgs: list[str] = []
    while r > tol and it < max_iter:
        it += 1
        if it == 1 and first_c is not None:
            comp.c.value = first_c
        else:
            Cw = C @ w
            comp.c.value = 1.0 / w + C @ (1.0 / Cw)  # ∇Σφᵢ at the current iterate, eq. (4)
        msgs = conics.solve_quiet(comp.problem, conic, options)
        cv_status = comp.problem.status
        new = comp.alpha.value
        if cv_status in ("infeasible", "infeasible_inaccurate"):
            info.update(cvxpy_status=cv_status, reason="CCP constraint set infeasible")
            return SolveResult(
                None, None, it, time.perf_counter() - t0, "pareto_stationary", name,
                compile_seconds, info,
            )  # fmt: skip
        if new is None or cv_status not in ("optimal", "optimal_inaccurate"):
            status_note = f"cvxpy status {cv_status!r} at CCP iteration {it}"
            break
        new = np.asarray(new, dtype=np.float64)
        if not np.all(np.isfinite(new)) or np.any(new <= 0):
            status_note = f"{conic} returned a non-positive alpha at CCP iteration {it}"
            break
        phi_new = _sum_phi(C, new)
        r_new = residual(C, new)
        if it > 1 and phi_new >= phi - 1e-13 * max(1.0, abs(phi)) and r_new >= r:
            status_note = "CCP stalled (sum of phi no longer decreases)"
            break
        w, r, phi = new, r_new, phi_new
    seconds = time.perf_counter() - t0
    if status_note is not None:
        info["reason"] = status_note
    if msgs:
        info["cvxpy_warnings"] = msgs
    info["cvxpy_status"] = comp.problem.status if it else None
    alpha = s * w
    comp.last_alpha[name] = alpha
    res = residual(G, alpha)
    return SolveResult(
        alpha, res, it, seconds, "ok" if res <= tol else "not_converged", name,
        compile_seconds, info,
    )  # fmt: skip


def solve(
    G: np.ndarray,
    *,
    tol: float = DEFAULT_TOL,
    alpha0: np.ndarray | None = None,
    max_iter: int = MAX_ITER,
    cone: str = "soc",
    warm_start: bool = True,
    phase1: bool = True,
    conic: str = "ecos",
    conic_options: dict[str, Any] | None = None,
    ecos_options: dict[str, Any] | None = None,
) -> SolveResult:
    """``ccp``: the paper's eq. (3)–(4) CCP in CVXPY (ECOS) on the unit-diagonal ``C = SGS``.

    Args:
        G: validated symmetric PSD float64 matrix with positive diagonal.
        tol: stop (and report ``ok``) once the residual is at most ``tol``.
        alpha0: start point (default: the previous solve's α for this n, else 1).
        max_iter: CCP iteration cap (the paper uses 200).
        cone: ``"soc"`` (hyperbolic form, default) or ``"exp"`` (literal logs).
        warm_start: start from the previous α for this n when no ``alpha0`` is given.
        phase1: find a start in the domain by the phase-I LP when needed.
        conic: the conic solver, ``"ecos"`` (the paper's, default) or ``"clarabel"``.
        conic_options: overrides for its settings (:data:`mtopt.solvers.conic.DEFAULTS`).
        ecos_options: overrides for ECOS (``abstol``, ``reltol``, ``feastol``, ``max_iters``).
    """
    return _ccp(
        G, name="ccp", scale=True, tol=tol, alpha0=alpha0, max_iter=max_iter, cone=cone,
        warm_start=warm_start, phase1=phase1, conic=conic, conic_options=conic_options,
        ecos_options=ecos_options,
    )  # fmt: skip
