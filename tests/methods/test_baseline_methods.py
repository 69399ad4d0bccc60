"""Loss- and gradient-level baseline methods on a tiny multi-task model.

Every method trains (finite, decreasing loss), resumes bit for bit from its state_dict, writes
the gradients its mathematics prescribes, and logs weights where its paper defines them.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from mtopt.errors import InputError
from mtopt.methods import aggregate
from mtopt.methods.base import OptimizerConfig
from mtopt.methods.loss.banditmtl import bandit_mirror_step
from mtopt.models.base import MultiTaskModel, check_split
from mtopt.registry import registry


class TinyMTL(MultiTaskModel):
    """Shared linear trunk (+tanh) and one linear tower per task; sets ``representation``."""

    def __init__(self, n_tasks: int = 2, d_in: int = 6, hidden: int = 8, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.n_tasks = n_tasks
        self.task_names = [f"t{i}" for i in range(n_tasks)]
        self.trunk = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh())
        self.towers = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(n_tasks))

    def forward(self, batch: dict) -> torch.Tensor:
        z = self.trunk(batch["dense"])
        self.representation = z
        return torch.cat([t(z) for t in self.towers], dim=1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        return list(self.towers[i].parameters())


def make_batches(k: int = 4, n_tasks: int = 2, b: int = 64, seed: int = 1) -> list[dict]:
    """Random data with labels from conflicting logistic teachers."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(6, n_tasks, generator=g)
    W[:, 1:] = -0.5 * W[:, :1] + torch.randn(6, n_tasks - 1, generator=g)
    out = []
    for _ in range(k):
        x = torch.randn(b, 6, generator=g)
        p = torch.sigmoid(2 * x @ W)
        y = (torch.rand(b, n_tasks, generator=g) < p).float()
        out.append({"dense": x, "labels": y})
    return out


CFG = OptimizerConfig(lr=0.02, weight_decay=0.0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on a 2-core CI)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: (registered name, hyperparameters used in the tests)
METHODS: list[tuple[str, dict]] = [
    ("si", {}),
    ("rlw", {}),
    ("dwa", {"window": 2}),
    ("uncertainty", {}),
    ("gradnorm", {}),
    ("banditmtl", {}),
    ("famo", {}),
    ("imtl_l", {}),
    ("mgda", {}),
    ("mgda_ub", {}),
    ("pcgrad", {}),
    ("cagrad", {}),
    ("graddrop", {}),
    ("imtl_g", {}),
    ("imtl", {}),
    ("nashmtl", {}),
    ("upgrad", {}),
    ("aligned_mtl", {}),
    ("fairgrad", {}),
]
WEIGHTED = {"rlw", "dwa", "uncertainty", "gradnorm", "banditmtl", "famo", "imtl_l", "mgda",
            "mgda_ub", "imtl_g", "imtl", "nashmtl", "upgrad", "aligned_mtl",
            "fairgrad"}  # fmt: skip


def build(name: str, hp: dict, n_tasks: int = 2, seed: int = 0):
    model = TinyMTL(n_tasks=n_tasks, seed=seed)
    method = registry.get("method", name)(model, CFG, **hp)
    return model, method


def run_step(model, method, batch):
    losses = model.losses(batch)
    if getattr(method, "needs_closure", False):
        return method.step(losses, closure=lambda: model.losses(batch))
    return method.step(losses)


def test_tiny_model_split() -> None:
    check_split(TinyMTL())


@pytest.mark.parametrize("name,hp", METHODS, ids=[m[0] for m in METHODS])
def test_method_trains_and_logs(name: str, hp: dict) -> None:
    model, method = build(name, hp)
    batch = make_batches(1)[0]
    with torch.no_grad():
        start = float(sum(model.losses(batch)))
    totals = []
    for _ in range(25):
        info = run_step(model, method, batch)
        assert all(math.isfinite(x) for x in info.task_losses)
        assert math.isfinite(info.loss) and abs(info.loss - sum(info.task_losses)) < 1e-5
        totals.append(info.loss)
        if name in WEIGHTED:
            assert info.weights is not None and len(info.weights) == 2
            assert all(math.isfinite(w) for w in info.weights)
        else:
            assert info.weights is None
    with torch.no_grad():
        end = float(sum(model.losses(batch)))
    assert end < start - 0.02, (name, start, end)
    assert np.mean(totals[-5:]) < totals[0]
    assert method.has_weights == (name in WEIGHTED)


@pytest.mark.parametrize("name,hp", METHODS, ids=[m[0] for m in METHODS])
def test_state_dict_resumes_bit_for_bit(name: str, hp: dict) -> None:
    batches = make_batches(6)
    model, method = build(name, hp)
    for b in batches[:3]:
        run_step(model, method, b)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "method": method.state_dict()}, buf)
    for b in batches[3:]:
        run_step(model, method, b)
    buf.seek(0)
    snap = torch.load(buf, weights_only=True)
    model2, method2 = build(name, hp, seed=123)  # different init: everything must come back
    model2.load_state_dict(snap["model"])
    method2.load_state_dict(snap["method"])
    for b in batches[3:]:
        run_step(model2, method2, b)
    for (k, p), p2 in zip(model.named_parameters(), model2.parameters()):
        assert torch.equal(p, p2), (name, k)


# --- the gradients each gradient-level method writes -----------------------------------------
def per_task_grads(model: TinyMTL, batch: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
    losses = model.losses(batch)
    shared = model.shared_parameters()
    rows = [
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(li, shared, retain_graph=True)])
        for li in losses
    ]
    towers = [p for i in range(model.n_tasks) for p in model.task_parameters(i)]
    tower_grads = list(torch.autograd.grad(sum(losses), towers))
    return torch.stack(rows), tower_grads


@pytest.mark.parametrize(
    "name,hp",
    [("mgda", {}), ("pcgrad", {"seed": 5}), ("cagrad", {}), ("graddrop", {"seed": 2}),
     ("imtl_g", {}), ("nashmtl", {"max_norm": 0.0}), ("upgrad", {}), ("aligned_mtl", {}),
     ("fairgrad", {})],
)  # fmt: skip
def test_gradient_methods_write_the_aggregated_gradient(name: str, hp: dict) -> None:
    model, method = build(name, hp, n_tasks=3)
    batch = make_batches(1, n_tasks=3)[0]
    J, tower_grads = per_task_grads(model, batch)
    kw = {k: v for k, v in hp.items() if k != "seed"}
    expected, _ = aggregate(
        name, J, generator=torch.Generator().manual_seed(hp.get("seed", 0)), **kw
    )
    run_step(model, method, batch)  # .grad keeps what the optimiser consumed
    got = torch.cat([p.grad.reshape(-1) for p in model.shared_parameters()])
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)
    towers = [p for i in range(3) for p in model.task_parameters(i)]
    for p, g in zip(towers, tower_grads):
        assert torch.allclose(p.grad, g, rtol=1e-5, atol=1e-7)


def test_mgda_ub_weights_come_from_the_representation() -> None:
    model, method = build("mgda_ub", {})
    batch = make_batches(1)[0]
    losses = model.losses(batch)
    Jz = torch.stack(
        [torch.autograd.grad(li, model.representation, retain_graph=True)[0].reshape(-1)
         for li in losses]
    )  # fmt: skip
    _, w = aggregate("mgda", Jz.double())
    shared = model.shared_parameters()
    expected = torch.autograd.grad(sum(float(wi) * li for wi, li in zip(w, losses)), shared)
    info = method.step(model.losses(batch))
    assert np.allclose(info.weights, w.numpy(), atol=1e-5)
    for p, g in zip(shared, expected):
        assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-7)


def test_mgda_ub_needs_a_representation() -> None:
    model, method = build("mgda_ub", {})
    losses = model.losses(make_batches(1)[0])
    model.representation = None
    with pytest.raises(InputError, match="representation"):
        method.step(losses)


# --- Nash-MTL --------------------------------------------------------------------------------
def test_nashmtl_weights_satisfy_its_equation() -> None:
    model, method = build("nashmtl", {"max_norm": 0.0}, n_tasks=3)
    batch = make_batches(1, n_tasks=3)[0]
    J, _ = per_task_grads(model, batch)
    G = (J.double() @ J.double().T).numpy()
    info = run_step(model, method, batch)
    a = np.asarray(info.weights)
    Gn = G / np.linalg.norm(G)
    assert info.solver_status == "ok"
    assert np.max(np.abs(a * (Gn @ a) - 1)) <= 1e-10
    assert info.extra["residual"] <= 1e-10


def test_nashmtl_pareto_stationary_fallback_and_update_every() -> None:
    model, method = build("nashmtl", {"solve_every": 2})  # alias of update_weights_every
    batch = make_batches(1)[0]
    shared0 = [p.detach().clone() for p in model.shared_parameters()]
    out = model(batch)
    y = batch["labels"]
    loss = nn.functional.binary_cross_entropy_with_logits(out[:, 0], y[:, 0])
    info = method.step([loss, -loss])  # g₂ = −g₁: 0 in the hull, no α at the first step
    assert info.solver_status == "pareto_stationary" and info.weights is None
    assert info.extra["fallbacks"] == 1
    for p, p0 in zip(model.shared_parameters(), shared0):
        assert torch.equal(p, p0)  # shared step skipped
    info = run_step(model, method, batch)  # step 1: no α yet, so it solves
    assert info.solver_status == "ok" and info.extra["solved"] == 1.0
    alpha = list(info.weights)
    # the schedule counts steps since the last solve (Balance), not global step multiples
    info = run_step(model, method, batch)  # step 2: reuses α, no solve, one backward
    assert info.extra["solved"] == 0.0 and info.weights == alpha and info.solver_status is None
    info = run_step(model, method, batch)  # step 3: two steps after the last solve: solves
    assert info.extra["solved"] == 1.0
    alpha = list(info.weights)
    run_step(model, method, batch)  # step 4: reuse
    out = model(batch)
    loss = nn.functional.binary_cross_entropy_with_logits(out[:, 0], y[:, 0])
    info = method.step([loss, -loss])  # step 5 solves, stationary: keeps the previous α
    assert info.solver_status == "pareto_stationary" and info.weights == alpha
    assert info.extra["fallbacks"] == 2
    assert method.balance.counts == {"solves": 4, "reuses": 2, "fallbacks": 2, "skipped": 1}


def test_nashmtl_clips_the_shared_gradient() -> None:
    model, method = build("nashmtl", {"max_norm": 1e-3})
    run_step(model, method, make_batches(1)[0])
    norm = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in method.shared]))
    assert float(norm) <= 1e-3 * (1 + 1e-5)


# --- loss-level specifics --------------------------------------------------------------------
def test_si_gradient_is_sum_of_relative_gradients() -> None:
    model, method = build("si", {})
    batch = make_batches(1)[0]
    losses = model.losses(batch)
    params = list(model.parameters())
    expected = torch.autograd.grad(sum(li / li.detach() for li in losses), params)
    method.step(model.losses(batch))
    for p, g in zip(params, expected):
        assert torch.allclose(p.grad, g, rtol=1e-5, atol=1e-7)


def test_rlw_loss_level_matches_the_aggregator_weights() -> None:
    model, method = build("rlw", {"seed": 7})
    info = run_step(model, method, make_batches(1)[0])
    _, w = aggregate("rlw", torch.zeros(2, 1), generator=torch.Generator().manual_seed(7))
    assert np.allclose(info.weights, w.numpy()) and abs(sum(info.weights) - 1) < 1e-9


def test_dwa_weights_follow_the_formula() -> None:
    model, method = build("dwa", {"window": 2, "temperature": 2.0})
    batches = make_batches(5)
    hist = []
    for b in batches[:4]:
        info = run_step(model, method, b)
        assert info.weights == [1.0, 1.0]  # fewer than two windows seen
        hist.append(info.task_losses)
    info = run_step(model, method, batches[4])
    h = np.asarray(hist)
    r = h[2:].mean(0) / h[:2].mean(0)
    w = 2 * np.exp(r / 2) / np.exp(r / 2).sum()
    assert np.allclose(info.weights, w, atol=1e-12)


def test_dwa_epoch_mode_uses_end_epoch() -> None:
    model, method = build("dwa", {"window": None})
    batches = make_batches(3)
    for _epoch in range(2):
        for b in batches:
            assert run_step(model, method, b).weights == [1.0, 1.0]
        method.end_epoch()
    assert run_step(model, method, batches[0]).weights != [1.0, 1.0]


def test_uncertainty_log_variances_move_to_the_loss_scale() -> None:
    """Classification form (Kendall eq. 10): the optimum of e^{−s}L + s/2 is s = log(2L)."""
    model = TinyMTL()
    method = registry.get("method", "uncertainty")(
        model, OptimizerConfig(lr=1e-4, weight_decay=0.0), lr=0.1
    )  # nearly frozen network, fast log-variances: the losses stay put while s converges
    batch = make_batches(1)[0]
    for _ in range(120):
        s_before = method.log_vars.detach().numpy().copy()
        losses = model.losses(batch)
        info = method.step([losses[0], 20.0 * losses[1]])  # task 1 on a 20× larger scale
    s = np.array([info.extra["log_var_0"], info.extra["log_var_1"]])
    target = np.log(2 * np.array(info.task_losses))
    assert np.all(np.abs(s - target) < 0.1), (s, target)
    assert abs((s[1] - s[0]) - (target[1] - target[0])) < 0.1  # differ by ≈ log 20
    # the logged weights are the coefficients e^{−s} used in the step
    assert np.allclose(info.weights, np.exp(-s_before), rtol=1e-5)


def test_famo_weights_on_simplex_and_logit_update() -> None:
    model, method = build("famo", {})
    batch = make_batches(1)[0]
    for _ in range(10):
        info = run_step(model, method, batch)
        z = np.asarray(info.weights)
        assert np.all(z >= 0) and abs(z.sum() - 1) < 1e-6
        assert info.extra["closure"] == 1.0
    # ξ-update: the authors' autograd of softmax with grad_outputs δ, then Adam
    xi = method.logits.detach().clone().requires_grad_(True)
    before, after = torch.tensor([0.5, 0.7]), torch.tensor([0.4, 0.69])
    delta = torch.log(before.double() + 1e-8) - torch.log(after.double() + 1e-8)
    expected = torch.autograd.grad(torch.softmax(xi.double(), 0), xi, grad_outputs=delta)[0]
    method._update_logits(before, after)
    assert torch.allclose(method.logits.grad.double(), expected.double(), atol=1e-7)
    # task 0 improved more: its weight goes down relative to task 1
    assert float((method.logits[0] - method.logits[1]).detach()) < float((xi[0] - xi[1]).detach())


def test_famo_without_closure_defers_the_update() -> None:
    model, method = build("famo", {})
    batches = make_batches(3)
    info = method.step(model.losses(batches[0]))
    assert info.extra["closure"] == 0.0 and torch.count_nonzero(method.logits) == 0
    method.step(model.losses(batches[1]))
    assert torch.count_nonzero(method.logits) > 0


def test_gradnorm_weights_sum_to_n_and_lower_the_stronger_gradient() -> None:
    model, method = build("gradnorm", {"alpha": 0.0, "weight_lr": 0.05})
    batch = make_batches(1)[0]
    losses = model.losses(batch)
    info = method.step([losses[0], 10.0 * losses[1]])  # task 1 has the larger gradient norm
    w = method.weights.detach().numpy()
    assert abs(w.sum() - 2) < 1e-5 and w.min() > 0 and info.weights == [1.0, 1.0]
    assert w[1] < w[0]


@pytest.mark.parametrize("rho", [0.02, 0.3, 5.0])
def test_banditmtl_step_is_the_kl_ball_mirror_step(rho: float) -> None:
    cp = pytest.importorskip("cvxpy")
    p0 = np.array([0.2, 0.5, 0.3])
    L = np.array([2.0, 0.3, 1.0])
    eta = 0.5
    p, lam = bandit_mirror_step(p0, L, eta, rho)
    x = cp.Variable(3, nonneg=True)
    u = np.full(3, 1 / 3)
    prob = cp.Problem(
        cp.Maximize(eta * L @ x - cp.sum(cp.rel_entr(x, p0))),
        [cp.sum(x) == 1, cp.sum(cp.rel_entr(x, u)) <= rho],
    )
    prob.solve(solver=cp.CLARABEL)
    assert np.allclose(p, x.value, atol=2e-5), (p, x.value)
    kl = float(np.sum(p * np.log(3 * p)))
    assert kl <= rho + 1e-9
    assert (lam > 0) == (kl > rho - 1e-6)  # the multiplier is active iff the ball binds


def test_banditmtl_weights_favour_the_larger_loss() -> None:
    model, method = build("banditmtl", {"rho": 0.1})
    batch = make_batches(1)[0]
    for _ in range(5):
        losses = model.losses(batch)
        info = method.step([losses[0], 5.0 * losses[1]])
    p = np.asarray(method.p)
    assert abs(p.sum() - 1) < 1e-12 and p[1] > p[0]
    assert float(np.sum(p * np.log(2 * p))) <= 0.1 + 1e-9
    assert info.weights is not None


@pytest.mark.parametrize("name", ["imtl_l", "imtl"])
def test_imtl_scales_make_every_scaled_loss_one(name: str) -> None:
    """IMTL-L: the optimum of e^{s}L − s is e^{s}L = 1, whatever the loss scale."""
    model = TinyMTL()
    method = registry.get("method", name)(model, OptimizerConfig(lr=1e-4), lr=0.1)
    batch = make_batches(1)[0]
    for _ in range(120):
        losses = model.losses(batch)
        info = method.step([losses[0], 30.0 * losses[1]])
    scaled = np.exp(method.log_scales.detach().numpy()) * np.asarray(info.task_losses)
    assert np.all(np.abs(np.log(scaled)) < 0.05), scaled


def test_bad_hyperparameters_are_input_errors() -> None:
    model = TinyMTL()
    for name, hp in [
        ("cagrad", {"c": -1}),
        ("nashmtl", {"update_weights_every": 0}),
        ("nashmtl", {"update_weights_every": 3, "solve_every": 2}),
        ("dwa", {"window": 0}),
        ("uncertainty", {"form": "poisson"}),
        ("gradnorm", {"on": "head"}),
        ("mgda", {"normalization": "max"}),
        ("famo", {"w_lr": 0}),
        ("pcgrad", {"seed": "x"}),
    ]:
        with pytest.raises(InputError):
            registry.get("method", name)(model, CFG, **hp)
