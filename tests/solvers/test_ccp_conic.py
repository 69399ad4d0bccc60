"""The ``conic`` option of the CVXPY CCP backends (``ccp``, ``ccp-raw``): Clarabel reaches
newton's α, the value is validated, a missing solver is a clear error, the compiled-problem
cache is keyed by it, and compare-solvers reports each conic solver as its own rows."""

from __future__ import annotations

import numpy as np
import pytest

cvxpy = pytest.importorskip("cvxpy")

import mtopt.solvers.ccp as ccp  # noqa: E402
import mtopt.solvers.conic as conic  # noqa: E402
from mtopt.compare import CompareConfig, backends, run  # noqa: E402
from mtopt.errors import InputError, SolverUnavailableError  # noqa: E402
from mtopt.solvers import solve  # noqa: E402

needs_clarabel = pytest.mark.skipif(
    "CLARABEL" not in cvxpy.installed_solvers(), reason="Clarabel is not installed"
)


def _gram(n: int, seed: int, kind: str = "random") -> np.ndarray:
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((max(4 * n, 12), n))
    if kind == "correlated":
        D = D + 1.5 * rng.standard_normal((D.shape[0], 1))
    elif kind == "scaled":
        D = D * np.logspace(-1, 1, n)
    return D.T @ D


@needs_clarabel
@pytest.mark.parametrize("solver", ["ccp", "ccp-raw"])
def test_clarabel_reaches_newtons_alpha(solver):
    tol = 1e-8
    for n, seed, kind in [(2, 0, "random"), (3, 1, "correlated"), (5, 2, "scaled"),
                          (8, 3, "random"), (10, 4, "correlated")]:  # fmt: skip
        G = _gram(n, seed, kind)
        ref = solve(G, "newton", tol=tol)
        r = solve(G, solver, tol=tol, conic="clarabel", warm_start=False)
        assert r.status == "ok", (n, kind, r.info)
        assert r.info["conic"] == "clarabel"
        a = r.alpha
        assert np.max(np.abs(a * (G @ a) - 1)) <= tol  # Gα = 1/α
        np.testing.assert_allclose(a, ref.alpha, rtol=1e-6)


@needs_clarabel
def test_clarabel_certifies_pareto_stationarity():
    G = np.array([[1.0, -1.0], [-1.0, 1.0]])
    for solver in ("ccp", "ccp-raw"):
        r = solve(G, solver, conic="clarabel", warm_start=False)
        assert r.status == "pareto_stationary", r.info
        assert r.alpha is None


@pytest.mark.parametrize("bad", ["scs", "", 3, None])
def test_invalid_conic_is_an_input_error_naming_it(bad):
    for solver in ("ccp", "ccp-raw"):
        with pytest.raises(InputError, match=r"conic: must be one of ecos, clarabel") as e:
            solve(_gram(3, 0), solver, conic=bad)
        assert solver in str(e.value)


def test_conic_is_case_insensitive_and_ecos_is_the_default():
    G = _gram(3, 5)
    assert solve(G, "ccp").info["conic"] == "ecos"
    assert solve(G, "ccp", conic="ECOS").info["conic"] == "ecos"


def test_option_misuse_is_an_input_error():
    G = _gram(3, 0)
    with pytest.raises(InputError, match="ecos_options"):
        solve(G, "ccp", conic="clarabel", ecos_options={"abstol": 1e-8})
    with pytest.raises(InputError, match="authors"):
        solve(G, "ccp-raw", procedure="authors", conic="clarabel")


def test_missing_clarabel_is_a_clear_error(monkeypatch):
    ccp.clear_cache()
    monkeypatch.setattr(conic, "_CHECKED", set())
    monkeypatch.setattr(cvxpy, "installed_solvers", lambda: ["ECOS", "SCS"])
    with pytest.raises(SolverUnavailableError, match="pip install clarabel"):
        solve(_gram(2, 0), "ccp", conic="clarabel")
    assert solve(_gram(2, 0), "ccp").ok  # ECOS unaffected


@needs_clarabel
def test_cache_is_keyed_by_conic_solver():
    ccp.clear_cache()
    G = _gram(4, 7)
    e1 = solve(G, "ccp", warm_start=False)
    c1 = solve(G, "ccp", conic="clarabel", warm_start=False)
    assert e1.compile_seconds > 0 and c1.compile_seconds > 0  # each compiled its own
    assert {k for k in ccp._CACHE if k[0] == 4} == {(4, "soc", "ecos"), (4, "soc", "clarabel")}
    assert ccp._CACHE[(4, "soc", "ecos")] is not ccp._CACHE[(4, "soc", "clarabel")]
    e2 = solve(G, "ccp", warm_start=False)
    c2 = solve(G, "ccp", conic="clarabel", warm_start=False)
    assert e2.compile_seconds == 0 and c2.compile_seconds == 0  # both hit the cache
    np.testing.assert_allclose(e2.alpha, c2.alpha, rtol=1e-6)


def test_compare_backends_expand_ccp_per_conic():
    names = [b.name for b in backends(["newton", "ccp", "ccp-raw"], ("ecos", "clarabel"))]
    assert names == ["newton", "ccp", "ccp[clarabel]", "ccp-raw", "ccp-raw[clarabel]"]
    assert [b.name for b in backends(["ccp"])] == ["ccp"]  # default: ECOS only, as before
    with pytest.raises(InputError, match="ccp_conics"):
        CompareConfig(ccp_conics=("ecos", "mosek")).check()


@needs_clarabel
def test_compare_reports_each_conic_solver_as_rows():
    cfg = CompareConfig(
        ns=(3,), instances=2, heavy_instances=2, scenarios=("random", "opposite"),
        solvers=("ccp",), ccp_conics=("ecos", "clarabel"),
    )  # fmt: skip
    result = run(cfg)
    by = {}
    for r in result.rows:
        by.setdefault(r["solver"], []).append(r)
    assert set(by) == {"ccp", "ccp[clarabel]"}
    for rows in by.values():
        assert len(rows) == 4
        assert all(r["status"] in ("ok", "pareto_stationary") for r in rows)
        assert all(r["seconds"] is not None for r in rows)
    assert not result.errors
