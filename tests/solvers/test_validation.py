"""Input validation of the solver dispatcher: the Cholesky PSD test against an independent
eigenvalue computation (borderline cases included), the fast path against the reference
checks, and ``validate="light"`` against the default full validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mtopt.solvers.base as base
from mtopt.errors import InputError
from mtopt.solvers import solve, validate_gram
from mtopt.solvers.base import PSD_TOL, InvalidGramError, psd_cholesky


def _lam_min_unit_diag(G: np.ndarray) -> float:
    """Smallest eigenvalue of the unit-diagonal G, computed here independently."""
    s = 1.0 / np.sqrt(np.diag(G))
    C = np.diag(s) @ G @ np.diag(s)
    C = 0.5 * (C + C.T)
    np.fill_diagonal(C, 1.0)
    return float(np.linalg.eigvalsh(C)[0])


def _unit_diag_with_lam_min(n: int, lam: float, rng: np.random.Generator) -> np.ndarray:
    """A unit-diagonal symmetric C with smallest eigenvalue ``lam`` (< 1): the eigenvalues of
    (1 − t)I + tM are 1 − t + tλ(M), and the diagonal stays 1 for a unit-diagonal M."""
    B = rng.standard_normal((n, max(1, n - 1)))  # rank-deficient: λmin(M) = 0 before scaling
    M = B @ B.T
    s = 1.0 / np.sqrt(np.diag(M))
    M = M * np.outer(s, s)
    M = 0.5 * (M + M.T)
    np.fill_diagonal(M, 1.0)
    lm = float(np.linalg.eigvalsh(M)[0])
    t = (1.0 - lam) / (1.0 - lm)
    C = (1.0 - t) * np.eye(n) + t * M
    np.fill_diagonal(C, 1.0)
    return C


# λmin relative to the tolerance τ = PSD_TOL·n: well inside (λ = 0.5), PSD and (nearly)
# singular, between the Cholesky jitter (−τ/2) and the threshold (−τ), just outside, far outside
LAM_FACTORS = ["inside", 1e-3, 0.0, -0.1, -0.49, -0.51, -0.9, -0.99, -1.01, -1.1, -2.0, -1e3]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(2, 12),
    st.sampled_from(LAM_FACTORS),
    st.integers(0, 2**31 - 1),
    st.floats(0.0, 4.0),
)
def test_cholesky_psd_check_agrees_with_eigvalsh(n, factor, seed, log_scale):
    rng = np.random.default_rng(seed)
    tau = PSD_TOL * n
    lam_target = 0.5 if factor == "inside" else factor * tau
    C = _unit_diag_with_lam_min(n, lam_target, rng)
    scale = 10.0 ** rng.uniform(-log_scale, log_scale, size=n)
    G = C * np.outer(scale, scale)
    lam = _lam_min_unit_diag(G)
    # the construction hits its target up to rounding (so the borderline cases are real)
    assert abs(lam - lam_target) <= 1e-3 * tau + 1e-13
    accept = lam >= -tau
    # the Cholesky test: success is only possible where eigvalsh accepts
    ok = psd_cholesky(G * np.outer(1 / scale, 1 / scale))
    if ok:
        assert accept
    if lam >= -0.4 * tau:  # clearly inside its jittered region: it must succeed
        assert ok
    if lam <= -0.6 * tau:  # clearly outside: it must fail (then eigvalsh decides)
        assert not ok
    # the whole validation decides as the eigenvalue test does
    if accept:
        A = validate_gram(G)
        np.testing.assert_array_equal(A, 0.5 * (G + G.T))
    else:
        with pytest.raises(InvalidGramError, match="not positive semi-definite"):
            validate_gram(G)


def _reference(G: np.ndarray) -> np.ndarray | str:
    """The reference checks alone (eigvalsh PSD test), as a value or the error message."""
    try:
        return base._full_checks(np.array(G, dtype=np.float64), "G", True)
    except InvalidGramError as exc:
        return str(exc)


def _validated(G: np.ndarray) -> np.ndarray | str:
    try:
        return validate_gram(G)
    except InvalidGramError as exc:
        return str(exc)


def _cases() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for n in (1, 2, 3, 5, 10):
        for log_scale in (0.0, 4.0):  # equal column norms, and norms spanning 1e-4…1e4
            D = rng.standard_normal((n + 3, n))
            D = D / np.linalg.norm(D, axis=0) * 10.0 ** rng.uniform(-log_scale, log_scale, n)
            G = D.T @ D
            out.append(G)
            for rel in (0.3e-9, 0.6e-9, 0.9e-9, 1.1e-9, 1e-6):  # asymmetry around SYM_RTOL
                if n > 1:
                    H = G.copy()
                    H[0, 1] += rel * math.sqrt(G[0, 0] * G[1, 1])
                    out.append(H)
    D = rng.standard_normal((2, 4))
    out.append(D.T @ D)  # PSD, singular (rank 2)
    out.append(np.diag([1.0, 0.0, 2.0]))  # zero column
    out.append(np.array([[1.0, 0.5, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # zero diag, not PSD
    out.append(np.array([[1.0, -1.0], [-1.0, 1.0]]))  # opposite
    out.append(np.array([[1.0, 2.0], [2.0, 1.0]]))  # |cos| > 1
    out.append(np.array([[-1.0, 0.0], [0.0, 1.0]]))  # negative diagonal
    out.append(np.zeros((3, 3)))
    return out


@pytest.mark.parametrize("G", _cases())
def test_fast_path_decides_as_the_reference_checks(G):
    got, ref = _validated(G), _reference(G)
    if isinstance(ref, str):
        assert got == ref
    else:
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, ref)  # bit-identical, so the same α follows


def test_validate_gram_does_not_return_or_modify_the_callers_array():
    G = np.array([[2.0, 0.5], [0.5, 1.0]])
    keep = G.copy()
    A = validate_gram(G)
    assert A is not G
    A[0, 0] = 99.0
    np.testing.assert_array_equal(G, keep)


def _solved(G: np.ndarray, mode: str, solver: str = "newton"):
    try:
        return solve(G, solver, validate=mode)
    except InputError as exc:
        return type(exc), str(exc)


def _light_cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    out = []
    for n in (2, 3, 5, 10, 12):
        D = rng.standard_normal((2 * n, n)) * 10.0 ** rng.uniform(-3, 3, size=n)
        out.append((f"random-{n}", D.T @ D))
    D = rng.standard_normal((2, 3))
    D[:, 2] = 0.5 * D[:, 0] + 0.5 * D[:, 1]  # rank 2, 0 not in the hull: solvable
    out.append(("singular-solvable", D.T @ D))
    out.append(("near-singular", (lambda D: D.T @ D)(np.array([[1.0, 1.0 + 1e-9], [1.0, 1.0]]))))
    out.append(("opposite", np.array([[4.0, -2.0], [-2.0, 1.0]])))
    out.append(("zero-column", np.diag([1.0, 0.0, 2.0])))
    out.append(("not-psd-no-solution", np.array([[1.0, -2.0], [-2.0, 1.0]])))
    out.append(("not-psd-zero-diag", np.array([[0.0, 1.0], [1.0, 1.0]])))
    out.append(("negative-diag", np.array([[-1.0, 0.0], [0.0, 1.0]])))
    out.append(("nan", np.array([[1.0, np.nan], [np.nan, 1.0]])))
    out.append(("asymmetric", np.array([[1.0, 0.5], [0.2, 1.0]])))
    out.append(("not-square", np.ones((2, 3))))
    return out


@pytest.mark.parametrize("solver", ["newton", "fixed-point"])
@pytest.mark.parametrize("case", _light_cases(), ids=lambda c: c[0])
def test_light_validation_gives_the_same_result_as_full(case, solver):
    name, G = case
    full, light = _solved(G, "full", solver), _solved(G, "light", solver)
    if isinstance(full, tuple):  # an error in full mode: the same error in light mode
        assert light == full
        return
    assert light.status == full.status
    assert (light.alpha is None) == (full.alpha is None)
    if full.alpha is not None:
        np.testing.assert_array_equal(light.alpha, full.alpha)
        assert light.residual == full.residual
        a = light.alpha  # the certificate, recomputed independently
        assert light.residual == pytest.approx(float(np.max(np.abs(a * (G @ a) - 1))), abs=1e-15)
    if name.startswith(("random", "singular", "near")) and solver == "newton":
        assert full.status == "ok"
    if name in ("opposite", "zero-column"):
        assert full.status == "pareto_stationary"


def test_light_validation_on_a_not_psd_gram_with_a_certified_solution():
    """The documented difference: G = [[1, 2], [2, 1]] is not PSD (cos = 2), yet α = 1/√3
    solves Gα = 1/α exactly. Full mode refuses G; light mode returns that α, certified."""
    G = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(InvalidGramError, match="not positive semi-definite"):
        solve(G, "newton")
    r = solve(G, "newton", validate="light")
    assert r.status == "ok"
    assert float(np.max(np.abs(r.alpha * (G @ r.alpha) - 1))) <= 1e-12
    np.testing.assert_allclose(r.alpha, 1 / math.sqrt(3), rtol=1e-12)


def test_light_validation_still_checks_shape_finiteness_and_symmetry():
    with pytest.raises(InvalidGramError, match="NaN or Inf"):
        solve(np.array([[1.0, np.inf], [np.inf, 1.0]]), validate="light")
    with pytest.raises(InvalidGramError, match="square"):
        solve(np.ones(3), validate="light")
    with pytest.raises(InvalidGramError, match="not symmetric"):
        solve(np.array([[1.0, 0.1], [0.0, 1.0]]), validate="light")


def test_unknown_validate_mode_is_an_input_error():
    with pytest.raises(InputError, match="validate"):
        solve(np.eye(2), validate="none")


def test_residual_is_recomputed_in_light_mode_too(monkeypatch):
    """A backend's own certificate is never trusted, whatever the validation mode."""
    import mtopt.solvers.newton as nt

    real = nt.solve

    def lying(G, **kw):
        r = real(G, **kw)
        r.alpha = r.alpha * 1.01  # 2 % off: residual ≈ 0.02
        r.residual = 0.0
        r.status = "ok"
        return r

    monkeypatch.setattr(nt, "solve", lying)
    from mtopt.registry import registry

    entry = registry.entry("solver", "newton")
    monkeypatch.setattr(entry, "target", lying)
    G = np.array([[2.0, 0.3], [0.3, 1.0]])
    for mode in ("full", "light"):
        r = solve(G, "newton", validate=mode)
        assert r.status == "not_converged" and r.residual > 1e-3
