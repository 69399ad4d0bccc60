"""Each weighting's α against an independent computation (issue #17, item 3).

References: brute-force QPs and the primal problems with ``scipy.optimize`` (SLSQP,
``least_squares``), computed from the rows of J (not from the weighting's own algebra), on
random and degenerate Gram matrices, plus the properties the papers state.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares, minimize

from mtopt.errors import InputError, UnknownNameError
from mtopt.weightings import get_weighting, names

SEEDS = (0, 1, 2)


def rows(seed: int, n: int = 3, d: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(n, d)) * np.exp(rng.normal(size=(n, 1)))
    J[1] -= 0.8 * J[0] * np.linalg.norm(J[1]) / np.linalg.norm(J[0])  # some conflict
    return J


def degenerate() -> list[np.ndarray]:
    g = np.array([1.0, -2.0, 0.5, 3.0])
    h = np.array([0.5, 1.0, -1.0, 0.0])
    return [
        np.vstack([g, 2 * g, h]),  # two parallel rows
        np.vstack([g, h, np.zeros(4)]),  # a zero row
        np.vstack([g, h, g + h]),  # rank 2
    ]


def simplex_qp(G: np.ndarray, lower: np.ndarray | None = None) -> float:
    """min vᵀGv over the simplex (lower None) or over v ≥ lower, by SLSQP from several starts."""
    n = G.shape[0]
    best = np.inf
    for k in range(n + 1):
        x0 = np.full(n, 1.0 / n) if k == n else np.eye(n)[k]
        if lower is None:
            cons = [{"type": "eq", "fun": lambda v: v.sum() - 1.0}]
            bounds = [(0.0, 1.0)] * n
        else:
            x0 = lower + x0
            cons, bounds = [], [(lo, None) for lo in lower]
        opts = {"ftol": 1e-15, "maxiter": 500}
        r = minimize(lambda v: v @ G @ v, x0, jac=lambda v: 2 * G @ v, bounds=bounds,
                     constraints=cons, method="SLSQP", options=opts)  # fmt: skip
        best = min(best, float(r.fun))
    return best


def test_names_listed_with_every_weighting() -> None:
    assert set(names()) == {"nash", "mgda", "imtl-g", "cagrad", "upgrad", "aligned-mtl",
                            "fairgrad"}  # fmt: skip


@pytest.mark.parametrize("J", [rows(s) for s in SEEDS] + degenerate())
def test_mgda_is_the_min_norm_point(J: np.ndarray) -> None:
    G = J @ J.T
    res = get_weighting("mgda")(G)
    a = res.alpha
    assert res.ok and np.all(a >= 0) and abs(a.sum() - 1) < 1e-12
    assert float(np.sum((a @ J) ** 2)) <= simplex_qp(G) + 1e-9 * np.max(np.diag(G))


@pytest.mark.parametrize("J", [rows(s) for s in SEEDS] + degenerate()[:1])
def test_imtl_g_equal_projections_on_unit_rows(J: np.ndarray) -> None:
    a = get_weighting("imtl-g")(J @ J.T).alpha
    g = a @ J
    proj = [g @ (r / np.linalg.norm(r)) for r in J]
    assert abs(a.sum() - 1) < 1e-12
    assert np.ptp(proj) < 1e-9 * np.linalg.norm(J, axis=1).max() ** 2


def test_imtl_g_closed_form_n2() -> None:
    """n = 2: equal projections ⇔ g ⟂ (u₁ − u₂) ⇔ g ∝ u₁ + u₂ (the bisector), i.e.
    α ∝ (‖g₂‖, ‖g₁‖)."""
    J = rows(5, n=2)
    a = get_weighting("imtl-g")(J @ J.T).alpha
    n1, n2 = np.linalg.norm(J, axis=1)
    np.testing.assert_allclose(a, np.array([n2, n1]) / (n1 + n2), rtol=1e-10)


@pytest.mark.parametrize("J", [rows(s) for s in SEEDS])
def test_cagrad_solves_its_primal(J: np.ndarray) -> None:
    """eq. (3): max_d min_i g_iᵀd in the ball ‖d − g₀‖ ≤ c‖g₀‖, brute force in d-space."""
    c, n = 0.4, J.shape[0]
    beta = get_weighting("cagrad", c=c, rescale=0)(J @ J.T).alpha
    d = beta @ J / n  # rescale=0: output n·d*
    g0 = J.mean(0)
    r = c * np.linalg.norm(g0)
    assert np.linalg.norm(d - g0) <= r * (1 + 1e-7)
    # epigraph form: max t s.t. g_iᵀd ≥ t, ‖d − g₀‖² ≤ r²
    cons = [{"type": "ineq", "fun": lambda x, i=i: J[i] @ x[:-1] - x[-1]} for i in range(n)]
    cons.append({"type": "ineq", "fun": lambda x: r**2 - np.sum((x[:-1] - g0) ** 2)})
    x0 = np.append(g0, float(np.min(J @ g0)))
    best = minimize(lambda x: -x[-1], x0, constraints=cons, method="SLSQP",
                    options={"ftol": 1e-14, "maxiter": 1000})  # fmt: skip
    assert float(np.min(J @ d)) >= -best.fun - 1e-6 * np.linalg.norm(g0) ** 2


def project_dual_cone(J: np.ndarray, x: np.ndarray) -> np.ndarray:
    """π_J(x) = argmin ‖y − x‖² s.t. Jy ≥ 0, by SLSQP in d-space (the paper's definition)."""
    cons = [{"type": "ineq", "fun": lambda y: J @ y, "jac": lambda y: J}]
    r = minimize(lambda y: np.sum((y - x) ** 2), x, jac=lambda y: 2 * (y - x), constraints=cons,
                 method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})  # fmt: skip
    return r.x


@pytest.mark.parametrize("J", [rows(s) for s in SEEDS])
def test_upgrad_is_the_mean_projection_onto_the_dual_cone(J: np.ndarray) -> None:
    """Quinton & Rey 2024, Sec. 3: A(J) = (1/n) Σᵢ π_J(gᵢ); here without regularisation."""
    a = get_weighting("upgrad", reg_eps=0.0)(J @ J.T).alpha
    ref = np.mean([project_dual_cone(J, g) for g in J], axis=0)
    scale = np.linalg.norm(J, axis=1).max()
    np.testing.assert_allclose(a @ J, ref, atol=1e-6 * scale)
    assert np.all(J @ (a @ J) >= -1e-9 * scale**2)  # non-conflicting (the paper's property)
    assert np.all(a >= 1.0 / J.shape[0] - 1e-12)


@pytest.mark.parametrize("J", degenerate())
def test_upgrad_degenerate_G_kkt_and_brute_qp(J: np.ndarray) -> None:
    from mtopt.weightings.upgrad import regularized

    w = get_weighting("upgrad")
    res = w(J @ J.T)
    assert res.ok and res.residual < 1e-9 and np.all(np.isfinite(res.alpha))
    A = regularized(J @ J.T, w.reg_eps)
    n = J.shape[0]
    # the sum of the n QP optima equals α's objective only per row; check each row's QP value
    from mtopt.weightings.upgrad import project_weights

    W = project_weights(A, np.eye(n) / n)
    for k in range(n):
        assert W[k] @ A @ W[k] <= simplex_qp(A, lower=np.eye(n)[k] / n) + 1e-10


@pytest.mark.parametrize("J", [rows(s) for s in SEEDS] + degenerate())
def test_aligned_mtl_condition_number_one(J: np.ndarray) -> None:
    """Senushkin et al. 2023: the aligned system has equal non-zero singular values σ_min(J),
    and the update is the aligned rows' mean."""
    from mtopt.weightings.aligned_mtl import balance_transformation

    res = get_weighting("aligned-mtl")(J @ J.T)
    B, _, _ = balance_transformation(J @ J.T)
    s = np.linalg.svd(B @ J, compute_uv=False)
    s_ref = np.linalg.svd(J, compute_uv=False)
    smin = s_ref[s_ref > 1e-9 * s_ref[0]].min()
    live = s[s > 1e-9 * s[0]]
    np.testing.assert_allclose(live, smin, rtol=1e-8)
    assert live.size == np.linalg.matrix_rank(J)
    np.testing.assert_allclose(res.alpha @ J, (B @ J).mean(0), atol=1e-12 * s_ref[0])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fair", [0.5, 2.0, 5.0])
def test_fairgrad_matches_the_authors_least_squares(seed: int, fair: float) -> None:
    """Ban & Ji 2024: (Gw)ᵢ = wᵢ^{−1/a}; the authors solve it with scipy's least_squares."""
    J = rows(seed)
    J[1] = J[1] + 1.0 * J[0]  # keep a positive solution
    G = J @ J.T
    res = get_weighting("fairgrad", fair_alpha=fair)(G)
    if not res.ok:
        pytest.skip("no positive solution on this G")
    ref = least_squares(lambda w: G @ w - w ** (-1.0 / fair), np.ones(3), bounds=(1e-12, np.inf),
                        xtol=1e-15, ftol=1e-15, gtol=1e-15)  # fmt: skip
    np.testing.assert_allclose(res.alpha, ref.x, rtol=1e-6)
    np.testing.assert_allclose(G @ res.alpha, res.alpha ** (-1.0 / fair), rtol=1e-8)


def test_fairgrad_a1_is_the_nash_equation() -> None:
    J = rows(3)
    J[1] = J[1] + J[0]
    G = J @ J.T
    fair = get_weighting("fairgrad", fair_alpha=1.0)(G)
    nash = get_weighting("nash")(G)
    np.testing.assert_allclose(fair.alpha, nash.alpha, rtol=1e-7)


def test_fairgrad_without_solution_reports_status() -> None:
    g = np.array([1.0, 2.0, -1.0])
    res = get_weighting("fairgrad")(np.outer([1, -1], [1, -1]) * (g @ g))  # g, −g: no w > 0
    assert res.alpha is None and res.status == "not_converged"


@pytest.mark.parametrize("name", ["mgda", "imtl-g", "cagrad", "upgrad", "aligned-mtl"])
@pytest.mark.parametrize("J", degenerate())
def test_degenerate_G_gives_finite_certified_weights(name: str, J: np.ndarray) -> None:
    res = get_weighting(name)(J @ J.T)
    assert res.ok and np.all(np.isfinite(res.alpha))
    assert res.residual is not None and res.residual < 1e-6


def test_bad_input_names_the_parameter() -> None:
    with pytest.raises(UnknownNameError, match="weighting"):
        get_weighting("nope")
    with pytest.raises(InputError, match="fair_alpha"):
        get_weighting("fairgrad", fair_alpha=-1)
    with pytest.raises(InputError, match="reg_eps"):
        get_weighting("upgrad", reg_eps=float("nan"))
    with pytest.raises(InputError, match="weighting_options"):
        get_weighting("mgda", c=1)
    with pytest.raises(InputError, match="G:"):
        get_weighting("mgda")(np.ones((2, 3)))
    with pytest.raises(InputError, match="G:"):
        get_weighting("mgda")(np.array([[1.0, np.nan], [np.nan, 1.0]]))


def test_gradient_level_aggregators_from_an_independent_svd() -> None:
    """Aligned-MTL's update from the SVD of J (J = USVᵀ → aligned rows σ_min·UVᵀ, Senushkin
    et al. 2023) and UPGrad's from the d-space projections; through ``aggregate``."""
    import torch

    from mtopt.methods.aggregators import aggregate

    J = rows(7)
    U, S, Vt = np.linalg.svd(J, full_matrices=False)
    ref = (S.min() * U @ Vt).mean(0)
    got, w = aggregate("aligned_mtl", torch.tensor(J))
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-10 * S.max())
    ref = np.mean([project_dual_cone(J, g) for g in J], axis=0)
    got, w = aggregate("upgrad", torch.tensor(J), reg_eps=0.0)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-6 * np.linalg.norm(J, axis=1).max())


@pytest.mark.parametrize("name,cls", [("upgrad", "UPGrad"), ("aligned-mtl", "AlignedMTL")])
def test_optional_agreement_with_torchjd(name: str, cls: str) -> None:
    """Only where torchjd is installed (it is not in mtopt's environments; not run here):
    its aggregators on the same rows give the same direction up to its regularisation."""
    tj = pytest.importorskip("torchjd.aggregation")
    import torch

    J = rows(11)
    ours = get_weighting(name)(J @ J.T).alpha @ J
    theirs = getattr(tj, cls)()(torch.tensor(J)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3 * np.abs(theirs).max())
