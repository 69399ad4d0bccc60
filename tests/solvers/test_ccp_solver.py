"""The CVXPY/ECOS CCP backends (`ccp`, `ccp-raw`): agreement with newton, DPP compile-once,
warm start, phase I, statuses, and the missing-ECOS error."""

from __future__ import annotations

import numpy as np
import pytest

cvxpy = pytest.importorskip("cvxpy")

import mtopt.solvers.ccp as ccp  # noqa: E402
import mtopt.solvers.ccp_paper as ccp_paper  # noqa: E402
import mtopt.solvers.conic as conic  # noqa: E402
from mtopt.errors import InputError, SolverUnavailableError  # noqa: E402
from mtopt.solvers import solve  # noqa: E402


def _gram(n: int, seed: int, kind: str = "random") -> np.ndarray:
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((max(4 * n, 12), n))
    if kind == "conflicting":
        D[:, 1] = -0.8 * D[:, 0] / np.linalg.norm(D[:, 0]) * np.linalg.norm(D[:, 1]) + 0.3 * D[:, 1]
    elif kind == "ill":
        D = D * np.logspace(-3, 3, n)
    return D.T @ D


@pytest.mark.parametrize("solver", ["ccp", "ccp-raw"])
@pytest.mark.parametrize("cone", ["soc", "exp"])
def test_ccp_agrees_with_newton_where_ok(solver, cone):
    agreed = 0
    for n, seed, kind in [(2, 0, "random"), (3, 1, "conflicting"), (5, 2, "random"),
                          (5, 3, "conflicting"), (4, 4, "ill")]:  # fmt: skip
        G = _gram(n, seed, kind)
        ref = solve(G, "newton")
        try:
            r = solve(G, solver, cone=cone, warm_start=False)
        except cvxpy.error.SolverError:  # propagated, never hidden (ECOS on the raw ill G)
            assert solver == "ccp-raw" and kind == "ill"
            continue
        if r.status == "ok":
            agreed += 1
            np.testing.assert_allclose(r.alpha, ref.alpha, rtol=1e-5)
            assert r.residual <= 1e-6
    # the unit-diagonal ccp must succeed everywhere here; ccp-raw at least on benign cases
    assert agreed >= (5 if solver == "ccp" else 3)


def test_compiles_once_per_n_and_is_dpp():
    ccp.clear_cache()
    G = _gram(3, 7)
    first = solve(G, "ccp")
    second = solve(_gram(3, 8), "ccp")
    assert first.compile_seconds > 0 and second.compile_seconds == 0
    comp = ccp._CACHE[(3, "soc", "ecos")]
    assert comp.problem.is_dpp()
    assert solve(_gram(4, 1), "ccp").compile_seconds > 0  # a new n compiles once
    exp_prob, _ = ccp._compile(3, "exp")
    assert exp_prob.problem.is_dpp()


def test_warm_start_from_previous_alpha():
    ccp.clear_cache()
    G = _gram(4, 11)
    a = solve(G, "ccp").alpha
    again = solve(G, "ccp")  # same G: the kept α already satisfies tol
    assert again.info["start"] == "previous" and again.iterations == 0
    np.testing.assert_allclose(again.alpha, a)
    cold = solve(G, "ccp", warm_start=False)
    assert cold.info["start"] == "ones" and cold.iterations >= 1


def test_phase_one_when_the_start_is_outside_the_domain():
    # 1 is a bad start: (C·1)₀ < 0 for this conflicting triple, so the linearisation of
    # log (Gα)₀ is undefined; the phase-I LP supplies a start.
    G = np.array([[1.0, -0.9, -0.2], [-0.9, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    assert (G @ np.ones(3)).min() < 0
    r = solve(G, "ccp", warm_start=False)
    assert r.info["start"] == "phase-1"
    assert r.status == "ok"
    np.testing.assert_allclose(r.alpha, solve(G).alpha, rtol=1e-5)


@pytest.mark.parametrize("solver", ["ccp", "ccp-raw"])
def test_degenerate_inputs_are_pareto_stationary(solver):
    u = np.array([1.0, 2.0, -0.5])
    D = np.stack([u, -3 * u, np.array([0.2, 0.1, 1.0])], axis=1)
    for G in (np.array([[1.0, -1.0], [-1.0, 1.0]]), D.T @ D):
        r = solve(G, solver, warm_start=False)
        assert r.status == "pareto_stationary", r.info
        assert r.alpha is None


def test_missing_ecos_is_a_clear_error(monkeypatch):
    import cvxpy as cp

    ccp.clear_cache()
    monkeypatch.setattr(conic, "_CHECKED", set())
    monkeypatch.setattr(cp, "installed_solvers", lambda: ["CLARABEL", "SCS"])
    with pytest.raises(SolverUnavailableError, match="pip install ecos"):
        solve(_gram(2, 0), "ccp")


class _FakeProblem:
    """Stands in for the compiled cvxpy problem to drive the status mapping."""

    def __init__(self, status: str, var, raise_exc: Exception | None = None):
        self.status, self.var, self.raise_exc = status, var, raise_exc

    def solve(self, **_):
        if self.raise_exc is not None:
            raise self.raise_exc
        self.var.value = None


@pytest.mark.parametrize(
    "cv_status,expected",
    [("unbounded", "not_converged"), ("infeasible", "pareto_stationary"),
     ("solver_error", "not_converged")],
)  # fmt: skip
def test_cvxpy_status_mapping(cv_status, expected):
    ccp.clear_cache()
    comp, _ = ccp._compile(3, "soc")
    real = comp.problem
    try:
        comp.problem = _FakeProblem(cv_status, comp.alpha)
        r = solve(_gram(3, 5), "ccp", warm_start=False)
        assert r.status == expected
        assert cv_status in str(r.info)
        assert r.alpha is None or expected == "not_converged"
    finally:
        comp.problem = real


def test_solver_exceptions_propagate():
    import cvxpy as cp

    ccp.clear_cache()
    comp, _ = ccp._compile(3, "soc")
    real = comp.problem
    try:
        comp.problem = _FakeProblem("x", comp.alpha, cp.error.SolverError("ECOS blew up"))
        with pytest.raises(cp.error.SolverError, match="ECOS blew up"):
            solve(_gram(3, 5), "ccp", warm_start=False)
    finally:
        comp.problem = real
    ccp.clear_cache()


def test_literal_paper_mode_linearises_outside_the_domain():
    """cone="exp", phase1=False is eq. (3)-(4) verbatim: from 1 with (G·1)₀ < 0 it linearises
    anyway. Whatever ECOS makes of it, an α is only returned with its residual."""
    G = np.array([[1.0, -0.9, -0.2], [-0.9, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    try:
        r = solve(G, "ccp-raw", cone="exp", phase1=False, warm_start=False)
    except cvxpy.error.SolverError:
        return  # propagated, as the contract demands
    assert r.info["start_outside_domain"] is True
    if r.status == "ok":
        np.testing.assert_allclose(r.alpha, solve(G).alpha, rtol=1e-5)
    else:
        assert r.alpha is None or r.residual > 1e-6


# --- procedure="authors": the α solve of the authors' public code, reproduced for timing ---


def test_authors_procedure_results_are_certified_and_agree_with_newton():
    agreed = 0
    for n, seed, kind in [(2, 0, "random"), (3, 1, "conflicting"), (5, 2, "random"),
                          (5, 3, "conflicting")]:  # fmt: skip
        G = _gram(n, seed, kind)
        r = solve(G, "ccp-raw", procedure="authors")
        assert 1 <= r.iterations <= ccp_paper.AUTHORS_MAX_ITER
        assert r.info["procedure"] == "authors"
        assert r.info["stop"] in ("residual", "alpha_change", "no_solution", "max_iter")
        if r.alpha is not None:  # the certificate, recomputed here
            a = r.alpha
            assert r.residual == pytest.approx(float(np.max(np.abs(a * (G @ a) - 1))), abs=1e-15)
            Gn = G / np.linalg.norm(G)
            assert r.info["residual_normalised"] == pytest.approx(
                float(np.max(np.abs(a * (Gn @ a) - 1))), rel=1e-12
            )
        if r.status == "ok":
            agreed += 1
            np.testing.assert_allclose(r.alpha, solve(G).alpha, rtol=1e-5)
    assert agreed >= 3


def test_authors_procedure_calls_cvxpy_as_their_code_does(monkeypatch):
    """Every iteration is one ``solve(..., warm_start=True, max_iters=100, ignore_dpp=True)``;
    the subproblem is not DPP (∇φ at the parameter α_t), so each call re-canonicalises."""
    calls = []
    real = cvxpy.Problem.solve

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    G = _gram(3, 4)
    ccp_paper._authors_problem(3)  # built beforehand: only the per-iteration solves are recorded
    monkeypatch.setattr(cvxpy.Problem, "solve", spy)
    r = solve(G, "ccp-raw", procedure="authors")
    assert len(calls) == r.iterations >= 1
    for kw in calls:
        assert kw["solver"] == "ECOS" and kw["ignore_dpp"] is True
        assert kw["warm_start"] is True and kw["max_iters"] == 100
    assert not ccp._AUTHORS[3].problem.is_dpp()


def test_authors_stopping_returns_the_iterate_before_the_last_solve():
    """Their loop tests α_t (the point the last subproblem was linearised at) and returns it,
    discarding the last solution: from the exact solution, one solve, α unchanged."""
    G = 10.0 * _gram(4, 6)  # ‖G‖_F far from 1: the residual test (on G/‖G‖_F) cannot fire
    exact = solve(G).alpha
    r = solve(G, "ccp-raw", procedure="authors", alpha0=exact)
    assert r.iterations == 1 and r.info["stop"] == "alpha_change"
    np.testing.assert_array_equal(r.alpha, exact)
    # with ‖G‖_F = 1 the raw and normalised equations coincide and the residual test fires
    G1 = G / np.linalg.norm(G)
    exact1 = solve(G1).alpha
    r1 = solve(G1, "ccp-raw", procedure="authors", alpha0=exact1)
    assert r1.iterations == 1 and r1.info["stop"] == "residual"
    np.testing.assert_array_equal(r1.alpha, exact1)
    # at most max_iter solves; without a stop the last solution is kept
    r2 = solve(G, "ccp-raw", procedure="authors", max_iter=1)
    assert r2.iterations == 1
    if r2.info["stop"] == "max_iter":
        assert not np.array_equal(r2.alpha, np.ones(4))


def test_authors_procedure_degenerate_and_errors(monkeypatch):
    r = solve(np.array([[4.0, -2.0], [-2.0, 1.0]]), "ccp-raw", procedure="authors")
    assert r.status == "pareto_stationary" and r.alpha is None  # constraint set infeasible
    # G·1 = 0: ∇φ(1) is infinite, cvxpy refuses the data; the error propagates (the public
    # code's bare except would keep α = 1 and stop)
    with pytest.raises(ValueError, match="NaN or Inf"):
        solve(np.array([[1.0, -1.0], [-1.0, 1.0]]), "ccp-raw", procedure="authors")
    with pytest.raises(InputError, match="procedure"):
        solve(np.eye(2), "ccp-raw", procedure="nash")
    prob, _ = ccp_paper._authors_problem(3)
    monkeypatch.setattr(
        prob, "problem", _FakeProblem("x", prob.alpha, cvxpy.error.SolverError("ECOS blew up"))
    )
    with pytest.raises(cvxpy.error.SolverError, match="ECOS blew up"):
        solve(_gram(3, 5), "ccp-raw", procedure="authors")
