"""Nash-MTL (Navon et al., ICML 2022) on PUB's balancing policy, mtopt.optim.balance.Balance:
untrusted α, warm start from the backend's signature, the schedule, bitwise resume (also from
the state layout written before Balance), the certificate of the α in use, one solver lookup."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from mtopt.errors import InputError
from mtopt.methods.aggregators import get_aggregator
from mtopt.methods.base import OptimizerConfig
from mtopt.methods.grad.nashmtl import NashMTL
from mtopt.models.base import MultiTaskModel
from mtopt.solvers import Backend, get_solver
from mtopt.solvers.newton import solve as newton

CFG = OptimizerConfig(lr=0.02, weight_decay=0.0)


class Tiny(MultiTaskModel):
    """Shared linear trunk (+tanh), one linear tower per task."""

    def __init__(self, n_tasks: int = 2, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.n_tasks = n_tasks
        self.task_names = [f"t{i}" for i in range(n_tasks)]
        self.trunk = nn.Sequential(nn.Linear(5, 6), nn.Tanh())
        self.towers = nn.ModuleList(nn.Linear(6, 1) for _ in range(n_tasks))

    def forward(self, batch: dict) -> torch.Tensor:
        z = self.trunk(batch["dense"])
        return torch.cat([t(z) for t in self.towers], dim=1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        return list(self.towers[i].parameters())


def batches(k: int, n_tasks: int = 2, seed: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(k):
        x = torch.randn(48, 5, generator=g)
        y = (torch.rand(48, n_tasks, generator=g) < torch.sigmoid(x[:, :n_tasks])).float()
        out.append({"dense": x, "labels": y})
    return out


def losses(model: Tiny, batch: dict) -> list[torch.Tensor]:
    out = model(batch)
    y = batch["labels"]
    bce = nn.functional.binary_cross_entropy_with_logits
    return [bce(out[:, i], y[:, i]) for i in range(model.n_tasks)]


def stationary(model: Tiny, batch: dict) -> list[torch.Tensor]:
    """g₂ = −g₁: 0 in the convex hull, no α exists (status pareto_stationary)."""
    first = losses(model, batch)[0]
    return [first, -first]


def shared_grad_rows(model: Tiny, batch: dict) -> torch.Tensor:
    ls = losses(model, batch)
    sh = model.shared_parameters()
    return torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(li, sh, retain_graph=True)])
         for li in ls]
    )  # fmt: skip


class Spy:
    """A solver backend that records its ``alpha0`` and can spoil its answer on request."""

    def __init__(self) -> None:
        self.alpha0s: list = []
        self.spoil: set[int] = set()  # call indices whose α is pushed 2 % off (not_converged)
        self.__name__ = "spy"

    def __call__(self, G, *, tol, alpha0=None):
        self.alpha0s.append(None if alpha0 is None else np.array(alpha0))
        res = newton(G, tol=tol, alpha0=alpha0)
        if len(self.alpha0s) - 1 in self.spoil:
            res.alpha = res.alpha * 1.02
        return res


def test_not_converged_alpha_is_not_trusted_and_counted() -> None:
    spy = Spy()
    spy.spoil = {1}
    model = Tiny()
    method = NashMTL(model, CFG, solver=spy, max_norm=0.0)
    bs = batches(3)
    a0 = method.step(losses(model, bs[0])).weights
    info = method.step(losses(model, bs[1]))  # the solver's α misses tol by far
    assert info.solver_status == "not_converged" and info.extra["solved"] == 1.0
    assert info.weights == a0  # the previous α, not the spoiled one
    assert info.extra["fallbacks"] == 1.0 and method.balance.counts["fallbacks"] == 1
    info = method.step(losses(model, bs[2]))
    assert info.solver_status == "ok" and info.weights != a0
    # the pure aggregator returns no direction for an untrusted α
    agg = get_aggregator("nashmtl", solver=Spy())
    agg.backend.fn.spoil = {0}
    d, w = agg(shared_grad_rows(Tiny(), bs[0]))
    assert w is None and torch.count_nonzero(d) == 0
    assert agg.last_info["status"] == "not_converged"
    assert agg.balance.counts == {"solves": 1, "reuses": 0, "fallbacks": 1, "skipped": 1}


def test_not_converged_step_uses_the_previous_alpha_exactly() -> None:
    spy = Spy()
    spy.spoil = {1}
    model = Tiny()
    method = NashMTL(model, CFG, solver=spy, max_norm=0.0)
    bs = batches(2)
    a0 = np.array(method.step(losses(model, bs[0])).weights)
    J = shared_grad_rows(model, bs[1])
    method.step(losses(model, bs[1]))
    # the shared gradient of the not_converged step is Σ a0ᵢ gᵢ with the previous α
    want = torch.as_tensor(a0, dtype=torch.float32) @ J
    got = torch.cat([p.grad.reshape(-1) for p in method.shared])
    assert torch.equal(got, want)


def test_warm_start_follows_the_backend_signature() -> None:
    model, bs = Tiny(), batches(3)
    spy = Spy()
    method = NashMTL(model, CFG, solver=spy)
    alphas = [method.step(losses(model, b)).weights for b in bs]
    assert spy.alpha0s[0] is None
    assert np.array_equal(spy.alpha0s[1], alphas[0]) and np.array_equal(spy.alpha0s[2], alphas[1])

    def no_warm(G, *, tol):  # no alpha0 in the signature: never passed one
        return newton(G, tol=tol)

    model = Tiny()
    method = NashMTL(model, CFG, solver=no_warm)
    assert method.balance.warm_start is False
    for b in bs:
        assert method.step(losses(model, b)).solver_status == "ok"
    # fixed-point takes alpha0 too (formerly only "newton" was warm-started)
    assert NashMTL(Tiny(), CFG, solver="fixed-point").balance.warm_start is True
    assert NashMTL(Tiny(), CFG, solver="closed-form").balance.warm_start is False


@pytest.mark.parametrize("n_tasks", [2, 3])
def test_the_alpha_in_use_solves_the_bargaining_equation(n_tasks: int) -> None:
    """Every α the method applies (warm-started solves) satisfies (G/‖G‖_F)α = 1/α."""
    model = Tiny(n_tasks)
    method = NashMTL(model, CFG, max_norm=0.0)
    for b in batches(6, n_tasks):
        J = shared_grad_rows(model, b).double()
        G = (J @ J.T).numpy()
        Gn = G / np.linalg.norm(G)
        info = method.step(losses(model, b))
        a = np.asarray(info.weights)
        assert info.solver_status == "ok" and np.all(a > 0)
        assert np.max(np.abs(a * (Gn @ a) - 1)) <= 1e-9
        assert np.array_equal(a, method.alpha)


def test_schedule_counts_from_the_last_solve_after_a_failed_first_step() -> None:
    model, bs = Tiny(), batches(8)
    method = NashMTL(model, CFG, update_weights_every=3)
    info = method.step(stationary(model, bs[0]))
    assert info.solver_status == "pareto_stationary" and info.weights is None
    solved = [method.step(losses(model, b)).extra["solved"] for b in bs[1:]]
    # first α at step 1; then every 3 steps after it (not at global multiples 3, 6)
    assert solved == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert method.balance.counts == {"solves": 4, "reuses": 4, "fallbacks": 1, "skipped": 1}


@pytest.mark.parametrize("every", [1, 3])
def test_resume_is_bitwise(every: int) -> None:
    bs = batches(9)
    model = Tiny()
    method = NashMTL(model, CFG, update_weights_every=every)
    method.step(stationary(model, bs[0]))  # a failed first solve: the schedule is shifted
    for b in bs[1:5]:
        method.step(losses(model, b))
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "method": method.state_dict()}, buf)
    ref = [method.step(losses(model, b)) for b in bs[5:]]
    buf.seek(0)
    snap = torch.load(buf, weights_only=True)
    model2 = Tiny(seed=7)
    method2 = NashMTL(model2, CFG, update_weights_every=every)
    model2.load_state_dict(snap["model"])
    method2.load_state_dict(snap["method"])
    got = [method2.step(losses(model2, b)) for b in bs[5:]]

    def strip(i):  # solve_seconds is wall-clock time
        return i.weights, i.solver_status, {k: v for k, v in i.extra.items() if "seconds" not in k}

    assert [strip(i) for i in got] == [strip(i) for i in ref]
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, p2)
    assert method2.balance.counts == method.balance.counts
    assert method2.balance.state_dict() == method.balance.state_dict()


def test_state_written_before_balance_loads() -> None:
    """The layout {"alpha", "fallbacks"} (n_steps % every schedule) resumes on schedule."""
    model, bs = Tiny(), batches(12)
    method = NashMTL(model, CFG, update_weights_every=10)
    for b in bs[:12]:
        method.step(losses(model, b))
    sd = method.state_dict()
    old = {**sd, "method": {"alpha": [float(a) for a in method.alpha], "fallbacks": 0}}
    method2 = NashMTL(Tiny(seed=3), CFG, update_weights_every=10)
    method2.load_state_dict(old)
    assert method2.balance.state_dict() == {**method.balance.state_dict(), "last_residual": None}
    assert method2.balance.counts == method.balance.counts == {
        "solves": 2, "reuses": 10, "fallbacks": 0, "skipped": 0
    }  # fmt: skip
    empty = {**sd, "n_steps": 0, "method": {}}  # before any step: solves at the next one
    method3 = NashMTL(Tiny(), CFG, update_weights_every=10)
    method3.load_state_dict(empty)
    assert method3.alpha is None and method3.balance.since_solve == 10


def test_solver_is_resolved_once(monkeypatch) -> None:
    model, bs = Tiny(), batches(2)
    method = NashMTL(model, CFG)
    assert isinstance(method.aggregator.backend, Backend)
    assert method.aggregator.backend.name == get_solver("newton").name
    import mtopt.solvers.backends as backends

    def no_lookup(name):
        raise AssertionError(f"solver looked up by name during a step: {name!r}")

    monkeypatch.setattr(backends, "get_solver", no_lookup)
    for b in bs:
        assert method.step(losses(model, b)).solver_status == "ok"
    assert get_aggregator("nashmtl", solver=get_solver("newton")).solver == "newton"


def test_nonfinite_gradients_raise() -> None:
    model, b = Tiny(), batches(1)[0]
    method = NashMTL(model, CFG)
    ls = losses(model, b)
    w = model.shared_parameters()[0]
    bad = ls[0] + torch.sqrt((w * 0).sum())  # finite value, NaN gradient (∞·0)
    with pytest.raises(InputError, match="NaN or Inf"):
        method.step([bad, ls[1]])
