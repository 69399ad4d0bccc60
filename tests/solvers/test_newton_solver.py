"""Properties of the default `newton` backend (DESIGN §2.1–§2.5), checked against independent
computations: the residual is recomputed here, scaling laws compare two solves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mtopt.solvers.newton as nt
from mtopt.solvers import solve


def _residual(G: np.ndarray, a: np.ndarray) -> float:
    return float(np.max(np.abs(a * (G @ a) - 1.0)))


def _updates(n: int, seed: int, log_scale: float, rho: float) -> np.ndarray:
    """d×n updates with d ≥ n + 2 (columns independent a.s., so a solution exists)."""
    rng = np.random.default_rng(seed)
    d = n + 2 + seed % 7
    z = rng.standard_normal((d, 1))
    D = rho * z + math.sqrt(1 - rho**2) * rng.standard_normal((d, n))
    return D * 10.0 ** rng.uniform(-log_scale, log_scale, size=n)


solvable = st.tuples(
    st.integers(2, 20),
    st.integers(0, 2**31 - 1),
    st.floats(0.0, 3.0),
    st.floats(-0.3, 0.95),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(solvable)
def test_newton_solves_random_solvable_gram(case):
    n, seed, log_scale, rho = case
    D = _updates(n, seed, log_scale, rho)
    G = D.T @ D
    r = solve(G, "newton")
    assert r.status == "ok", r.info
    assert r.residual <= 1e-10
    assert _residual(G, r.alpha) <= 1e-10  # independent recomputation
    assert np.all(r.alpha > 0)
    # at the solution αᵀGα = Σ αᵢ (Gα)ᵢ = n, so ‖Dα‖ = √n (DESIGN §2.3)
    assert abs(r.alpha @ G @ r.alpha - n) <= 1e-9 * n
    assert abs(np.linalg.norm(D @ r.alpha) - math.sqrt(n)) <= 1e-9 * math.sqrt(n)


@settings(max_examples=30, deadline=None)
@given(solvable, st.floats(-6.0, 6.0), st.integers(0, 2**31 - 1))
def test_newton_scaling_laws(case, log_c, seed2):
    n, seed, log_scale, rho = case
    D = _updates(n, seed, log_scale, rho)
    G = D.T @ D
    a = solve(G, "newton").alpha
    # α(cG) = α(G)/√c
    c = 10.0**log_c
    np.testing.assert_allclose(solve(c * G, "newton").alpha, a / math.sqrt(c), rtol=1e-9)
    # per-task rescaling G → SGS gives α → S⁻¹α, and the update Dα is invariant
    k = 10.0 ** np.random.default_rng(seed2).uniform(-2, 2, size=n)
    a_s = solve(np.diag(k) @ G @ np.diag(k), "newton").alpha
    np.testing.assert_allclose(a_s, a / k, rtol=1e-9)
    np.testing.assert_allclose((D * k) @ a_s, D @ a, rtol=1e-8, atol=1e-12)


def test_newton_matches_a_generic_minimiser_of_f():
    """Independent reference: f(α) = ½αᵀGα − Σ log αᵢ minimised by SciPy's L-BFGS-B."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    D = rng.standard_normal((12, 6))
    G = D.T @ D

    def f(a):
        return 0.5 * a @ G @ a - np.sum(np.log(a)), G @ a - 1 / a

    ref = minimize(f, np.ones(6), jac=True, method="L-BFGS-B", bounds=[(1e-9, None)] * 6,
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})  # fmt: skip
    np.testing.assert_allclose(solve(G).alpha, ref.x, rtol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9])
def test_unrolled_and_numpy_paths_agree(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        D = rng.standard_normal((n + 3, n)) * 10.0 ** rng.uniform(-2, 2, size=n)
        G = D.T @ D
        s = 1 / np.sqrt(np.diag(G))
        C = G * np.outer(s, s)
        np.fill_diagonal(C, 1.0)
        w0 = np.full(n, math.sqrt(n / C.sum()))
        w1, it1, f1 = nt._newton_np(C, w0.copy(), 100)
        w2, it2, f2 = nt._newton_unrolled(C, w0.copy(), 100)
        assert (it1, f1) == (it2, f2)
        np.testing.assert_allclose(w1, w2, rtol=1e-12)
        assert _residual(C, w2) <= 1e-13


def test_numpy_path_with_plain_linalg_solve(monkeypatch):
    """The fast LAPACK call has a public fallback; both give the same α."""
    rng = np.random.default_rng(0)
    D = rng.standard_normal((20, 9))
    G = D.T @ D
    fast = solve(G).alpha
    monkeypatch.setattr(nt, "_lin_solve", np.linalg.solve)
    np.testing.assert_allclose(solve(G).alpha, fast, rtol=1e-13)


def test_warm_start_at_the_solution_needs_no_iteration():
    rng = np.random.default_rng(1)
    for n in (3, 8):
        D = rng.standard_normal((10, n))
        G = D.T @ D
        a = solve(G).alpha
        r = solve(G, alpha0=a)
        assert r.iterations == 0 and r.residual <= 1e-13
        # a bad warm start is ignored rather than trusted
        assert solve(G, alpha0=-a).status == "ok"


@pytest.mark.parametrize(
    "G",
    [
        np.array([[1.0, -1.0], [-1.0, 1.0]]),  # two exactly opposite updates
        np.array([[4.0, -2.0], [-2.0, 1.0]]),  # opposite with different norms
        # three unit vectors at 120° in the plane: 0 is their centroid
        (lambda U: U.T @ U)(
            np.array([[math.cos(t), math.sin(t)] for t in (0, 2 * math.pi / 3, 4 * math.pi / 3)]).T
        ),
        # d1 = −d2 plus an unrelated third task (0 in the hull of a sub-pair)
        (lambda D: D.T @ D)(np.array([[1.0, -1.0, 0.3], [2.0, -2.0, 0.5], [0.0, 0.0, 1.0]])),
        np.diag([1.0, 0.0, 2.0]),  # a zero update column
    ],
)
def test_degenerate_inputs_are_pareto_stationary(G):
    r = solve(G, "newton")
    assert r.status == "pareto_stationary"
    assert r.alpha is None and r.residual is None


def test_near_degenerate_but_solvable_two_tasks():
    for eps in (1e-2, 1e-6, 1e-10):
        cos = -1 + eps
        G = np.array([[1.0, cos], [cos, 1.0]])
        r = solve(G)
        assert r.status == "ok"
        np.testing.assert_allclose(r.alpha, 1 / math.sqrt(eps), rtol=1e-6)


def test_ill_conditioned_column_norms():
    rng = np.random.default_rng(5)
    D = rng.standard_normal((30, 6)) * np.array([1e-4, 1e-2, 1.0, 1e2, 1e3, 1e4])
    G = D.T @ D
    r = solve(G)
    assert r.status == "ok" and _residual(G, r.alpha) <= 1e-10


def test_iteration_cap_reports_not_converged_with_residual():
    rng = np.random.default_rng(2)
    D = rng.standard_normal((10, 7))
    D[:, 1] = -0.9 * D[:, 0] + 0.1 * D[:, 1]
    r = solve(D.T @ D, "newton", max_iter=1)
    assert r.status == "not_converged"
    assert r.alpha is not None and r.residual > 1e-6
