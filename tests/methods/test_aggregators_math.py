"""Pure aggregators (mtopt.methods.aggregate) checked against independent mathematics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtopt.errors import InputError, UnknownNameError
from mtopt.methods import aggregate
from mtopt.methods.aggregators import get_aggregator, names
from mtopt.methods.aggregators.mgda import min_norm_exact
from mtopt.methods.aggregators.pcgrad import pcgrad_coefficients
from mtopt.solvers.base import residual_floor

cp = pytest.importorskip("cvxpy")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on a 2-core CI)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def jac(seed: int, n: int, d: int, conflict: float = 0.0) -> torch.Tensor:
    """Random float64 Jacobian; ``conflict`` > 0 pushes rows towards −row 0."""
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(n, d, generator=g, dtype=torch.float64)
    J = J * torch.exp(torch.randn(n, 1, generator=g, dtype=torch.float64))  # unequal norms
    if conflict:
        J[1:] = J[1:] - conflict * J[0] * (J[1:].norm(dim=1, keepdim=True) / J[0].norm())
    return J


# --- API -------------------------------------------------------------------------------------
def test_names_and_errors() -> None:
    assert names() == [
        "aligned_mtl", "cagrad", "fairgrad", "graddrop", "imtl_g", "mgda", "nashmtl", "pcgrad",
        "rlw", "upgrad",
    ]  # fmt: skip
    J = jac(0, 2, 5)
    with pytest.raises(UnknownNameError, match="known: aligned_mtl, cagrad"):
        aggregate("nope", J)
    with pytest.raises(InputError, match="representation"):
        aggregate("MGDA-UB", J)
    with pytest.raises(InputError, match="NaN"):
        aggregate("mgda", torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(InputError, match="NaN or Inf"):
        aggregate("graddrop", torch.tensor([[1.0, float("inf")], [1.0, 2.0]]))
    with pytest.raises(InputError, match="shape"):
        aggregate("mgda", torch.ones(3))
    with pytest.raises(InputError, match="method.c"):
        aggregate("cagrad", J, c=-1)
    with pytest.raises(InputError, match="bad hyperparameters"):
        aggregate("pcgrad", J, colour="red")
    with pytest.raises(InputError, match="losses"):
        aggregate("mgda", J, normalization="loss")


def test_methods_package_does_not_import_torch() -> None:
    code = (
        "import sys, mtopt.methods\n"
        "from mtopt.registry import registry\n"
        "registry.names('method'); registry.entry('method', 'nashmtl')\n"
        "assert callable(mtopt.methods.aggregate)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_float32_input_gives_float32_output() -> None:
    J = jac(1, 3, 7).float()
    for name in names():
        v, w = aggregate(name, J, generator=torch.Generator().manual_seed(0))
        assert v.dtype == torch.float32 and v.shape == (7,)
        assert w is None or w.dtype == torch.float64


# --- MGDA ------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 6),
    d=st.integers(1, 12),
    conflict=st.sampled_from([0.0, 0.5, 1.5]),
)
def test_mgda_kkt_of_min_norm_problem(seed: int, n: int, d: int, conflict: float) -> None:
    """w is optimal for min_{w∈Δ} wᵀGw: (Gw)ᵢ ≥ wᵀGw for all i, with equality on the support."""
    J = jac(seed, n, d, conflict)
    v, w = aggregate("mgda", J)
    w = w.numpy()
    G = (J @ J.T).numpy()
    scale = G.diagonal().max()
    assert abs(w.sum() - 1) < 1e-12 and w.min() >= 0
    Gw, q = G @ w, w @ G @ w
    assert Gw.min() >= q - 1e-9 * scale
    assert np.all(np.abs(Gw[w > 1e-9] - q) <= 1e-9 * scale)
    assert torch.allclose(v, torch.as_tensor(w) @ J, atol=1e-12)


@pytest.mark.parametrize("seed,n,d", [(0, 2, 5), (1, 3, 2), (2, 5, 30), (3, 4, 4), (4, 6, 3)])
def test_mgda_matches_independent_qp(seed: int, n: int, d: int) -> None:
    J = jac(seed, n, d, conflict=0.8)
    v, _ = aggregate("mgda", J)
    Jn = J.numpy()
    w = cp.Variable(n, nonneg=True)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Jn.T @ w)), [cp.sum(w) == 1])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    ref = Jn.T @ w.value
    scale = float(np.linalg.norm(Jn, axis=1).max())
    # the min-norm point is unique even where the weights are not
    assert np.linalg.norm(v.numpy() - ref) <= 1e-5 * scale
    assert float(v @ v) <= float(ref @ ref) + 1e-10 * scale**2


def test_mgda_frank_wolfe_is_close_and_normalisations_apply() -> None:
    J = jac(5, 4, 9, conflict=0.6)
    v_ex, _ = aggregate("mgda", J)
    v_fw, w_fw = aggregate("mgda", J, solver="frank_wolfe")
    assert abs(float(w_fw.sum()) - 1) < 1e-12
    assert float(v_fw @ v_fw) <= float(v_ex @ v_ex) * (1 + 1e-2) + 1e-12
    # 'l2' solves on unit gradients and applies the weights to the raw ones
    U = J / J.norm(dim=1, keepdim=True)
    _, w_u = aggregate("mgda", U)
    v_l2, w_l2 = aggregate("mgda", J, normalization="l2")
    assert torch.allclose(w_l2, w_u, atol=1e-9)
    assert torch.allclose(v_l2, w_l2 @ J, atol=1e-12)
    losses = [0.5, 2.0, 1.0, 4.0]
    _, w_loss = aggregate("mgda", J, normalization="loss", losses=losses)
    _, w_ref = aggregate("mgda", J / torch.tensor(losses, dtype=torch.float64)[:, None])
    assert torch.allclose(w_loss, w_ref, atol=1e-9)


def test_min_norm_exact_degenerate_cases() -> None:
    # 0 inside the hull: min norm 0
    G = np.array([[1.0, -1.0], [-1.0, 1.0]])
    w = min_norm_exact(G)
    assert w @ G @ w < 1e-20 and abs(w.sum() - 1) < 1e-15
    # duplicated gradient (affinely dependent points) and a zero gradient
    g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    w = min_norm_exact(g @ g.T)
    assert (w @ g) @ (w @ g) < 1e-20


# --- PCGrad ----------------------------------------------------------------------------------
def pcgrad_direct(J: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The paper's Algorithm 1 written out on the vectors, same order convention."""
    n = J.shape[0]
    projected = []
    for i in range(n):
        order = [j for j in torch.randperm(n, generator=gen).tolist() if j != i]
        gi = J[i].clone()
        for j in order:
            dot = gi @ J[j]
            if dot < 0:
                gi = gi - dot / (J[j] @ J[j]) * J[j]
        projected.append(gi)
    return torch.stack(projected).sum(0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 10))
def test_pcgrad_two_tasks_nonnegative_inner_product(seed: int, d: int) -> None:
    J = jac(seed, 2, d, conflict=1.0)
    G = (J @ J.T).numpy()
    C = pcgrad_coefficients(G, [[1], [0]])
    P = torch.as_tensor(C) @ J
    assert float(P[0] @ P[1]) >= -1e-12 * float(G.diagonal().max())
    if G[0, 1] < 0:  # each projected gradient is orthogonal to the other original one
        assert abs(float(P[0] @ J[1])) <= 1e-10 * float(G.diagonal().max())
    v, w = aggregate("pcgrad", J, generator=torch.Generator().manual_seed(seed))
    assert w is None
    assert torch.allclose(v, P.sum(0), atol=1e-12)


@pytest.mark.parametrize("seed,n,d", [(0, 3, 6), (1, 4, 3), (2, 5, 12), (3, 6, 2)])
def test_pcgrad_equals_direct_procedure(seed: int, n: int, d: int) -> None:
    J = jac(seed, n, d, conflict=0.9)
    v, _ = aggregate("pcgrad", J, generator=torch.Generator().manual_seed(seed))
    ref = pcgrad_direct(J, torch.Generator().manual_seed(seed))
    assert torch.allclose(v, ref, atol=1e-10 * float(J.norm()))
    v_mean, _ = aggregate(
        "pcgrad", J, generator=torch.Generator().manual_seed(seed), reduction="mean"
    )
    assert torch.allclose(v_mean * n, v, atol=1e-12 * float(J.norm()))


def test_pcgrad_without_conflict_is_the_sum() -> None:
    J = torch.abs(jac(7, 4, 5))  # all pairwise inner products ≥ 0
    v, _ = aggregate("pcgrad", J, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(v, J.sum(0), atol=1e-12)


# --- CAGrad ----------------------------------------------------------------------------------
def cagrad_reference(J: np.ndarray, c: float) -> tuple[float, np.ndarray]:
    """Dual optimum value and the primal direction, both by cvxpy."""
    n = J.shape[0]
    g0 = J.mean(0)
    k = c * np.linalg.norm(g0)
    w = cp.Variable(n, nonneg=True)
    dual = cp.Problem(cp.Minimize((J @ g0) @ w + k * cp.norm(J.T @ w)), [cp.sum(w) == 1])
    dual.solve(solver=cp.CLARABEL)
    dvar, t = cp.Variable(J.shape[1]), cp.Variable()
    primal = cp.Problem(cp.Maximize(t), [J @ dvar >= t, cp.norm(dvar - g0) <= k])
    primal.solve(solver=cp.CLARABEL)
    return float(dual.value), dvar.value


@pytest.mark.parametrize(
    "seed,n,d,c", [(0, 2, 6, 0.4), (1, 3, 8, 0.4), (2, 4, 10, 0.8), (3, 5, 20, 0.2), (4, 3, 3, 1.5)]
)
def test_cagrad_solves_its_dual_and_primal(seed: int, n: int, d: int, c: float) -> None:
    J = jac(seed, n, d, conflict=0.7)
    agg = get_aggregator("cagrad", c=c, rescale=0)
    v, w = agg(J)
    assert w is None
    Jn = J.numpy()
    ref_value, ref_d = cagrad_reference(Jn, c)
    scale = float((Jn**2).sum(1).max())
    assert agg.last_info["dual_value"] <= ref_value + 1e-7 * scale
    d_ours = v.numpy() / n  # rescale=0 returns n·d*
    # d* is primal feasible: on the ball ‖d − g₀‖ = c‖g₀‖ ...
    g0 = Jn.mean(0)
    assert abs(np.linalg.norm(d_ours - g0) - c * np.linalg.norm(g0)) <= 1e-9 * np.sqrt(scale)
    # ... and weak duality (minᵢ gᵢᵀd ≤ F(w) for every feasible pair) is tight: both optimal
    gap = agg.last_info["dual_value"] - float((Jn @ d_ours).min())
    assert -1e-12 * scale <= gap <= 1e-12 * scale
    # the interior-point reference agrees to its own accuracy
    assert np.linalg.norm(d_ours - ref_d) <= 1e-3 * np.linalg.norm(ref_d)


def test_cagrad_rescale_conventions_and_c_zero_is_ls() -> None:
    J = jac(9, 3, 7, conflict=0.5)
    v0, _ = aggregate("cagrad", J, c=0.4, rescale=0)
    v1, _ = aggregate("cagrad", J, c=0.4, rescale=1)
    v2, _ = aggregate("cagrad", J, c=0.4, rescale=2)
    assert torch.allclose(v1, v0 / (1 + 0.4**2), atol=1e-12)
    assert torch.allclose(v2, v0 / 1.4, atol=1e-12)
    vz, _ = aggregate("cagrad", J, c=0.0)
    assert torch.allclose(vz, J.sum(0), atol=1e-12)


# --- IMTL-G ----------------------------------------------------------------------------------
def imtl_paper_closed_form(J: torch.Tensor) -> torch.Tensor:
    """α₂:ₙ = g₁Uᵀ(DUᵀ)⁻¹, α₁ = 1 − Σα₂:ₙ with rows D = g₁ − gᵢ, U = u₁ − uᵢ (paper, eq. 7)."""
    U = J / J.norm(dim=1, keepdim=True)
    D = J[0] - J[1:]
    Ud = U[0] - U[1:]
    a = (J[0] @ Ud.T) @ torch.linalg.inv(D @ Ud.T)
    return torch.cat([1 - a.sum().reshape(1), a])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 5), extra=st.integers(0, 8))
def test_imtl_g_equal_projections(seed: int, n: int, extra: int) -> None:
    J = jac(seed, n, n + extra, conflict=0.3)
    v, alpha = aggregate("imtl_g", J)
    U = J / J.norm(dim=1, keepdim=True)
    proj = U @ v
    assert abs(float(alpha.sum()) - 1) < 1e-10
    assert float(proj.max() - proj.min()) <= 1e-8 * float(proj.abs().max())
    assert torch.allclose(v, alpha @ J, atol=1e-12 * float(J.norm()))
    ref = imtl_paper_closed_form(J)
    assert torch.allclose(alpha, ref, rtol=1e-6, atol=1e-8)


def test_imtl_g_zero_gradient_task() -> None:
    J = jac(3, 3, 5)
    J[2] = 0.0
    v, alpha = aggregate("imtl_g", J)
    assert float(alpha[2]) == 0.0 and abs(float(alpha.sum()) - 1) < 1e-12
    U = J[:2] / J[:2].norm(dim=1, keepdim=True)
    p = U @ v
    assert abs(float(p[0] - p[1])) < 1e-10


# --- Nash-MTL --------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 6), extra=st.integers(0, 6))
def test_nashmtl_weights_solve_the_bargaining_equation(seed: int, n: int, extra: int) -> None:
    J = jac(seed, n, n + extra, conflict=0.3)
    G = (J @ J.T).numpy()
    fro = np.linalg.norm(G)
    agg = get_aggregator("nashmtl", max_norm=0.0)
    v, alpha = agg(J)
    a = alpha.numpy()
    # authors' normalisation: α solves (G/‖G‖_F) α = 1/α
    # near Pareto stationarity (square random J) fp64 limits the certificate: allow the
    # rounding floor of the residual evaluation itself (mtopt.solvers.base.residual_floor)
    floor = max(1e-10, 10 * residual_floor(G / fro, a))
    assert np.max(np.abs(a * ((G / fro) @ a) - 1)) <= floor
    assert agg.last_info["status"] == "ok" and agg.last_info["residual"] <= floor
    assert torch.allclose(v, alpha @ J, atol=1e-12 * float(J.norm()))
    # normalize="none": α solves Gα = 1/α, and α_frobenius = √‖G‖_F · α_none
    v2, a2 = aggregate("nashmtl", J, normalize="none", max_norm=0.0)
    assert np.max(np.abs(a2.numpy() * (G @ a2.numpy()) - 1)) <= max(
        1e-10, 10 * residual_floor(G, a2.numpy())
    )
    assert np.allclose(a, np.sqrt(fro) * a2.numpy(), rtol=1e-9)
    assert abs(float(v2 @ v2) - n) <= 1e-8 * n  # ‖d‖² = αᵀGα = n


def test_nashmtl_max_norm_and_pareto_stationary() -> None:
    J = jac(2, 3, 6) * 100
    v, _ = aggregate("nashmtl", J, max_norm=1.0)
    assert float(v.norm()) <= 1.0 + 1e-9
    g = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    agg = get_aggregator("nashmtl")
    v, w = agg(torch.stack([g, -g]))
    assert w is None and torch.count_nonzero(v) == 0
    assert agg.last_info["status"] == "pareto_stationary"
    with pytest.raises(UnknownNameError):
        aggregate("nashmtl", J, solver="no-such-solver")


# --- GradDrop --------------------------------------------------------------------------------
def test_graddrop_sign_consistency_and_agreement() -> None:
    J = jac(4, 3, 200)
    v, w = aggregate("graddrop", J, generator=torch.Generator().manual_seed(1))
    assert w is None
    pos = torch.where(J > 0, J, 0).sum(0)
    neg = torch.where(J < 0, J, 0).sum(0)
    # per coordinate the result is the sum of the positive or of the negative gradients
    assert bool(((v - pos).abs() < 1e-12).logical_or((v - neg).abs() < 1e-12).all())
    # where all tasks agree in sign nothing is dropped
    agree = (J > 0).all(0) | (J < 0).all(0)
    assert torch.allclose(v[agree], J.sum(0)[agree])
    # leak = 1 lets every gradient through
    v1, _ = aggregate("graddrop", J, generator=torch.Generator().manual_seed(1), leak=1.0)
    assert torch.allclose(v1, J.sum(0), atol=1e-12)


def test_graddrop_keeps_positive_sign_with_probability_p() -> None:
    d = 20_000
    J = torch.stack([torch.ones(d), -torch.ones(d) / 3]).double()  # P = ½(1 + (2/3)/(4/3)) = ¾
    v, _ = aggregate("graddrop", J, generator=torch.Generator().manual_seed(0))
    frac = float((v > 0).double().mean())
    assert abs(frac - 0.75) < 0.02  # 4.6 standard deviations


# --- RLW -------------------------------------------------------------------------------------
def test_rlw_weights_on_simplex_and_reproducible() -> None:
    J = jac(6, 4, 5)
    v, w = aggregate("rlw", J, generator=torch.Generator().manual_seed(3))
    v2, w2 = aggregate("rlw", J, generator=torch.Generator().manual_seed(3))
    assert torch.equal(w, w2) and torch.equal(v, v2)
    assert abs(float(w.sum()) - 1) < 1e-12 and float(w.min()) > 0
    z = torch.randn(4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(w, torch.exp(z) / torch.exp(z).sum())
    assert torch.allclose(v, w @ J)


def test_cagrad_at_a_pareto_stationary_point_falls_back_to_the_mean() -> None:
    J = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-1.0, -2.0]], dtype=torch.float64)  # 0 in hull
    agg = get_aggregator("cagrad", c=3.0)  # c ≥ 1: the ball holds 0, the dual optimum g_w = 0
    v, _ = agg(J)
    assert agg.last_info["stationary"] is True
    assert torch.allclose(v, 3 * J.mean(0) / (1 + 3.0**2), atol=1e-12)
