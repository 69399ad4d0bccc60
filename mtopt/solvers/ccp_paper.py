"""Backend ``ccp-raw``: the PUB paper's CCP literally on the raw ``G``, and a replica of the α
solve in the authors' public code (``procedure="authors"``), for comparisons.

The CCP itself (eq. (3)–(4), cone forms, phase I, warm starts) is :func:`mtopt.solvers.ccp._ccp`
and is documented in :mod:`mtopt.solvers.ccp`; this module only runs it without the
unit-diagonal scaling, and holds :func:`_authors_procedure`, which reproduces, as our own code,
what the authors' public implementation of PUB does per α solve (a Nash-MTL-style CCP; Navon et
al., "Multi-Task Learning as a Bargaining Game", ICML 2022, whose solver it adapts). It is not a
different solver of ours, and it uses neither the cache, warm start, cone nor phase-I options.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtopt.errors import InputError
from mtopt.solvers.base import DEFAULT_TOL, SolveResult, residual
from mtopt.solvers.ccp import _AUTHORS, MAX_ITER, _ccp, _import_cvxpy, check_size
from mtopt.solvers.conic import check_conic

__all__ = ["AUTHORS_ECOS", "AUTHORS_MAX_ITER", "PROCEDURES", "solve_raw"]

PROCEDURES = ("paper", "authors")
#: CCP iterations per α solve in the authors' public code (its ``optim_niter``)
AUTHORS_MAX_ITER = 20
#: ECOS options the authors' code passes (``max_iters=100``; other tolerances ECOS defaults)
AUTHORS_ECOS = {"max_iters": 100}


@dataclass
class _AuthorsProblem:
    """The authors' Nash-MTL-style subproblem for one n (built once, like their object)."""

    problem: Any
    alpha: Any
    prev: Any
    G: Any
    c: Any
    compile_seconds: float


def _authors_problem(n: int) -> tuple[_AuthorsProblem, float]:
    """Build (once per n) the subproblem as the authors' code poses it; returns it and the
    seconds paid by this call (building it and cvxpy's first solve, which constructs the
    solving chain; their code pays this once per training run).

    Variables and parameters: ``α ≥ 0``; ``α_t`` (the previous iterate), ``Gₙ = G/‖G‖_F`` and
    ``c = ‖G‖_F``. Objective ``Σᵢ(Gₙα)ᵢ + ∇φ(α_t)ᵀ(α − α_t)/c`` with
    ``∇φ(α_t) = 1/α_t + Gₙᵀ(1/(Gₙα_t))``, the linearised ``φ = Σ log αᵢ + Σ log(Gₙα)ᵢ``;
    constraints ``−log(αᵢ·c) − log((Gₙα)ᵢ) ≤ 0`` (i.e. ``αᵢ(Gα)ᵢ ≥ 1`` on the raw ``G``), one
    per task. ``∇φ(α_t)`` is written with parameters, which is not DPP: their code therefore
    solves with ``ignore_dpp=True``, which canonicalises the problem again on every solve.
    """
    hit = _AUTHORS.get(n)
    if hit is not None:
        return hit, 0.0
    cp = _import_cvxpy()
    t0 = time.perf_counter()
    a = cp.Variable(n, nonneg=True)
    prev = cp.Parameter(n, value=np.ones(n))
    G = cp.Parameter((n, n), value=np.eye(n))
    c = cp.Parameter(1, value=np.ones(1))
    grad_phi = 1 / prev + (1 / (G @ prev)) @ G
    Ga = G @ a
    constraints = [-cp.log(a[i] * c) - cp.log(Ga[i]) <= 0 for i in range(n)]
    problem = cp.Problem(cp.Minimize(cp.sum(Ga) + grad_phi @ (a - prev) / c), constraints)
    _solve_authors(problem, {})  # constructs the solving chain (cached by cvxpy)
    hit = _AuthorsProblem(problem, a, prev, G, c, time.perf_counter() - t0)
    _AUTHORS[n] = hit
    return hit, hit.compile_seconds


def _solve_authors(problem: Any, ecos_options: dict[str, Any]) -> list[str]:
    """One solve as the authors' code calls it, with ECOS; returns cvxpy's warnings."""
    options = dict(AUTHORS_ECOS)
    options.update(ecos_options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem.solve(solver="ECOS", warm_start=True, ignore_dpp=True, **options)
    return [str(w.message) for w in caught]


def _authors_procedure(
    G: np.ndarray,
    *,
    tol: float,
    alpha0: np.ndarray | None,
    max_iter: int,
    ecos_options: dict[str, Any] | None,
) -> SolveResult:
    """The α solve of the authors' public PUB code, reproduced step by step (for timing).

    Per call: ``c = ‖G‖_F``, ``Gₙ = G/c``; from ``α_t`` = ``alpha0`` (their code carries α over
    from the previous solve, initially ``1``; we start from ``1`` unless ``alpha0`` is given),
    at most ``max_iter`` (their ``optim_niter = 20``) times: set ``α_t`` as the linearisation
    point and the variable's value, solve the subproblem of :func:`_authors_problem` with
    ``warm_start=True, max_iters=100, ignore_dpp=True`` (a full re-canonicalisation every
    iteration), then stop if the solve gave no α, if ``‖Gₙα_t − 1/(α_t + 1e-10)‖₂ < 1e-3``
    (tested at ``α_t``, the point *before* this solve, on ``Gₙ``), or if the new α moved by
    less than ``1e-6`` (2-norm) — on stopping, ``α_t`` is returned and the new solution is
    discarded — else ``α_t ← α_new``.

    Deliberate differences, both needed for an honest measurement: their code names the
    solver ``cp.QSOP``, which does not exist in CVXPY, inside a bare ``except`` that keeps α
    unchanged, so as published its α never moves and its cost is that of raising the error;
    we use ECOS (a solver that accepts these exponential cones) and let solver exceptions
    propagate. ``seconds`` covers every iteration, each recompilation included;
    ``compile_seconds`` only the one-time construction per n.

    The certificate is, as for every backend, recomputed by :func:`mtopt.solvers.solve` on
    the ``G`` passed in. The constraints encode ``αᵢ(Gα)ᵢ ≥ 1`` on that raw ``G``, while the
    residual test above measures ``Gₙα = 1/α``, whose solution is ``√c`` times larger; both
    are reported in ``info`` (``residual_normalised``, ``authors_stop_value``).
    """
    n = G.shape[0]
    prob, compile_seconds = _authors_problem(n)
    t0 = time.perf_counter()
    fro = float(np.linalg.norm(G))
    Gn = G / fro
    prob.G.value = Gn
    prob.c.value = np.array([fro])
    info: dict[str, Any] = {"procedure": "authors", "frobenius": fro, "solver": "ECOS"}
    alpha_t, info["start"] = np.ones(n), "ones"
    if alpha0 is not None:  # a bad warm start is ignored, as by the other backends
        a0 = np.asarray(alpha0, dtype=np.float64).reshape(-1)
        if a0.shape == (n,) and np.all(np.isfinite(a0)) and np.all(a0 > 0):
            alpha_t, info["start"] = a0, "alpha0"
    stop = "max_iter"
    it = 0
    msgs: list[str] = []
    while it < max_iter:
        it += 1
        prob.alpha.value = alpha_t
        prob.prev.value = alpha_t
        msgs = _solve_authors(prob.problem, ecos_options or {})
        new = prob.alpha.value
        if new is None:
            stop = "no_solution"
            break
        if np.linalg.norm(Gn @ alpha_t - 1 / (alpha_t + 1e-10)) < 1e-3:
            stop = "residual"
            break
        if np.linalg.norm(new - alpha_t) < 1e-6:
            stop = "alpha_change"
            break
        alpha_t = np.asarray(new, dtype=np.float64)
    seconds = time.perf_counter() - t0
    info.update(stop=stop, cvxpy_status=prob.problem.status)
    if msgs:
        info["cvxpy_warnings"] = msgs
    info["authors_stop_value"] = float(np.linalg.norm(Gn @ alpha_t - 1 / (alpha_t + 1e-10)))
    if stop == "no_solution" and prob.problem.status in ("infeasible", "infeasible_inaccurate"):
        info["reason"] = "CCP constraint set infeasible"
        return SolveResult(
            None, None, it, seconds, "pareto_stationary", "ccp-raw", compile_seconds, info
        )
    if stop == "no_solution":
        info["reason"] = f"cvxpy status {prob.problem.status!r} at CCP iteration {it}"
    if np.all(alpha_t > 0):
        info["residual_normalised"] = residual(Gn, alpha_t)
    res = residual(G, alpha_t)
    return SolveResult(
        alpha_t, res, it, seconds, "ok" if res <= tol else "not_converged", "ccp-raw",
        compile_seconds, info,
    )  # fmt: skip


def solve_raw(
    G: np.ndarray,
    *,
    tol: float = DEFAULT_TOL,
    alpha0: np.ndarray | None = None,
    max_iter: int | None = None,
    cone: str = "soc",
    warm_start: bool = True,
    phase1: bool = True,
    conic: str = "ecos",
    conic_options: dict[str, Any] | None = None,
    ecos_options: dict[str, Any] | None = None,
    procedure: str = "paper",
) -> SolveResult:
    """``ccp-raw``: the same CCP as :func:`solve`, literally on the raw ``G`` (no scaling).

    Same arguments as :func:`solve`; ``cone="exp", phase1=False`` gives the paper's
    formulation verbatim (see :mod:`mtopt.solvers.ccp`). ``procedure="authors"`` runs instead the
    α solve of the authors' public code (:func:`_authors_procedure`: Frobenius-normalised
    ``G``, Nash-MTL-style subproblem recompiled every iteration, at most ``max_iter = 20``
    iterations, their stopping rules); ``cone``, ``warm_start`` and ``phase1`` do not apply
    to it and ``ecos_options`` override its ``max_iters=100``; it runs on ECOS only (the
    ``conic`` option, :mod:`mtopt.solvers.conic`, selects the solver of ``"paper"``).
    ``max_iter`` defaults to 200 (``"paper"``) or 20 (``"authors"``).
    """
    if procedure not in PROCEDURES:
        raise InputError(f"procedure: must be one of {PROCEDURES} (ccp-raw), got {procedure!r}")
    conic = check_conic(conic, "ccp-raw")
    if procedure == "authors" and (conic != "ecos" or conic_options):
        raise InputError(
            "conic: procedure='authors' replicates the authors' code on ECOS only; "
            f"got conic={conic!r}" + (" with conic_options" if conic_options else "")
        )
    check_size(np.shape(G)[0], "ccp-raw")
    if procedure == "authors":
        return _authors_procedure(
            G, tol=tol, alpha0=alpha0, ecos_options=ecos_options,
            max_iter=AUTHORS_MAX_ITER if max_iter is None else max_iter,
        )  # fmt: skip
    return _ccp(
        G, name="ccp-raw", scale=False, tol=tol, alpha0=alpha0,
        max_iter=MAX_ITER if max_iter is None else max_iter, cone=cone,
        warm_start=warm_start, phase1=phase1, conic=conic, conic_options=conic_options,
        ecos_options=ecos_options,
    )  # fmt: skip
