"""closed-form (n = 2) and fixed-point (SciPy) backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtopt.errors import InputError
from mtopt.solvers import solve


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-0.999, 0.999),
    st.floats(-4, 4),
    st.floats(-4, 4),
)
def test_closed_form_equals_newton_for_two_tasks(cos, l1, l2):
    n1, n2 = 10.0**l1, 10.0**l2
    G = np.array([[n1 * n1, cos * n1 * n2], [cos * n1 * n2, n2 * n2]])
    cf = solve(G, "closed-form")
    nt = solve(G, "newton")
    assert cf.status == nt.status == "ok"
    np.testing.assert_allclose(cf.alpha, nt.alpha, rtol=1e-9)
    # the textbook formula, written out independently
    root = math.sqrt(1 + cos)
    np.testing.assert_allclose(cf.alpha, [1 / (n1 * root), 1 / (n2 * root)], rtol=1e-12)


def test_closed_form_refuses_other_n_and_flags_opposite():
    with pytest.raises(InputError, match="n = 2"):
        solve(np.eye(3), "closed-form")
    r = solve(np.array([[4.0, -6.0], [-6.0, 9.0]]), "closed-form")
    assert r.status == "pareto_stationary" and r.alpha is None


def test_closed_form_declares_its_n_range():
    from mtopt.registry import registry

    meta = registry.entry("solver", "closed-form").meta
    assert meta["min_n"] == 2 and meta["max_n"] == 2


@pytest.mark.parametrize("method", ["del2", "iteration"])
def test_fixed_point_agrees_with_newton_on_benign_input(method):
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        z = rng.standard_normal((20, 1))
        D = 0.7 * z + 0.7 * rng.standard_normal((20, n))  # positively correlated tasks
        G = D.T @ D
        r = solve(G, "fixed-point", method=method)
        assert r.status == "ok", r.info
        np.testing.assert_allclose(r.alpha, solve(G).alpha, rtol=1e-7)


def test_fixed_point_not_converged_on_a_constructed_conflict():
    """DESIGN §2.6: with w = solution, the map's Jacobian (log coordinates) is ½(I − WCW);
    an eigenvalue μ > 3 of WCW makes the fixed point repelling. Tasks 1, 2 at cos = −0.8
    give μ = (1 − cos)/(1 + cos) = 9 on their pair; a third task breaks the symmetry so
    the ray start is not already the solution and the unstable mode is excited."""
    c12, c13, c23 = -0.8, 0.3, 0.1
    G = np.array([[1.0, c12, c13], [c12, 1.0, c23], [c13, c23, 1.0]])
    ref = solve(G, "newton")
    assert ref.status == "ok"
    w = ref.alpha
    mu = np.linalg.eigvalsh(np.diag(w) @ G @ np.diag(w)).max()
    assert mu > 3  # repelling: |½(1 − μ)| > 1
    for method in ("iteration", "del2"):
        r = solve(G, "fixed-point", method=method)
        assert r.status == "not_converged", (method, r)
        assert r.alpha is None or (np.all(np.isfinite(r.alpha)) and r.residual > 1e-6)
        assert "reason" in r.info


def test_fixed_point_two_tasks_from_the_unit_diagonal_ray_converges_even_when_conflicting():
    # DESIGN §2.6: at n = 2 the unit-diagonal ray start is already the solution (symmetry),
    # so the unstable mode (cos ≤ −½) is never excited.
    G = np.array([[4.0, -1.6], [-1.6, 1.0]])  # cos = −0.8
    r = solve(G, "fixed-point", method="iteration")
    assert r.status == "ok"
    np.testing.assert_allclose(r.alpha, solve(G, "closed-form").alpha, rtol=1e-12)


def test_fixed_point_degenerate_never_returns_nan_or_huge_alpha():
    for G in (np.array([[1.0, -1.0], [-1.0, 1.0]]),
              (lambda D: D.T @ D)(np.array([[1.0, -2.0, 0.1], [1.0, -2.0, 1.0]]))):  # fmt: skip
        r = solve(G, "fixed-point")
        assert r.status in ("pareto_stationary", "not_converged")
        assert r.alpha is None or np.all(np.isfinite(r.alpha))


def test_solve_result_to_dict_is_strict_json_even_with_nan_in_info():
    import json

    from mtopt.solvers.base import SolveResult

    info = {"seq": [float("nan"), np.float64(2.0)], "arr": np.array([1.0, np.inf])}
    r = SolveResult(np.ones(2), 0.5, 1, 1e-3, "ok", "x", info=info)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["info"] == {"seq": [None, 2.0], "arr": [1.0, None]}


def test_solve_takes_a_resolved_backend_or_any_callable():
    from mtopt.solvers import Backend, get_solver
    from mtopt.solvers import newton as nt

    G = np.array([[2.0, 0.3], [0.3, 1.0]])
    b = get_solver("Closed_Form")
    assert isinstance(b, Backend) and b.name == "closed-form" and b.meta["max_n"] == 2
    by_name, by_backend = solve(G, "closed-form"), solve(G, b)
    np.testing.assert_array_equal(by_name.alpha, by_backend.alpha)
    assert by_backend.solver == "closed-form"
    r = solve(G, nt.solve)  # a bare callable: its own result names it
    assert r.ok and r.solver == "newton"
    with pytest.raises(InputError, match="solver"):
        solve(G, 3)


def test_unknown_solver_name_lists_the_known_ones():
    from mtopt.errors import UnknownNameError
    from mtopt.solvers import get_solver

    with pytest.raises(UnknownNameError, match="newton"):
        get_solver("no-such-solver")


def test_closed_form_error_names_the_parameter_not_a_flag():
    with pytest.raises(InputError) as exc:
        solve(np.eye(3), "closed-form")
    assert str(exc.value).startswith("solver: ") and "--" not in str(exc.value)
    assert "solver='newton'" in str(exc.value)
