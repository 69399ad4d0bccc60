"""DRGrad: split-tower backbone, PPNet gate, router, updater (docs/drgrad.md)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig
from mtopt.methods.drgrad import DRGrad, route, support, transfer_scale, updater_mu
from mtopt.methods.ls import LS
from mtopt.models.base import MultiTaskModel, check_split
from mtopt.models.drgrad import DRGradModel, build
from mtopt.registry import registry

SMALL = {
    "embed_dim": 4,
    "n_experts": 3,
    "expert_hidden": (16,),
    "expert_dim": 8,
    "tower_dims": (8,),
    "user_dim": 4,
    "gate_hidden": 8,
}


def _schema(n_users: int = 0, tasks: tuple[str, ...] = ("click", "conv")) -> Schema:
    return Schema(cat_cardinalities=[5, 7], n_dense=3, task_names=list(tasks), n_users=n_users)


def _batches(
    schema: Schema, n: int = 4, b: int = 64, seed: int = 0, users: bool = True
) -> list[dict]:
    """Learnable fake data: labels from a fixed logistic model (+ a per-user bias)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, schema.n_tasks, generator=g)
    cat_w = [torch.randn(c, schema.n_tasks, generator=g) for c in schema.cat_cardinalities]
    user_w = torch.randn(max(schema.n_users, 1), schema.n_tasks, generator=g) * 2
    out = []
    for _ in range(n):
        cat = torch.stack(
            [torch.randint(0, c, (b,), generator=g) for c in schema.cat_cardinalities], dim=1
        )
        dense = torch.randn(b, 3, generator=g)
        z = dense @ w + sum(cw[cat[:, j]] for j, cw in enumerate(cat_w))
        batch = {"cat": cat, "dense": dense}
        if schema.n_users and users:
            u = torch.randint(0, schema.n_users, (b,), generator=g)
            z = z + user_w[u]
            batch["user"] = u
        batch["labels"] = (torch.rand(b, schema.n_tasks, generator=g) < torch.sigmoid(z)).float()
        out.append(batch)
    return out


def _model(n_users: int = 0, seed: int = 0, **kw) -> DRGradModel:
    torch.manual_seed(seed)
    return DRGradModel(_schema(n_users), **{**SMALL, **kw})


def _train(method, model, batches, steps: int) -> list[float]:
    losses = []
    for t in range(steps):
        info = method.step(model.losses(batches[t % len(batches)]))
        losses.append(info.loss)
    return losses


# -- backbone ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_users", [0, 10])
def test_split_partitions_parameters(n_users: int) -> None:
    model = _model(n_users)
    check_split(model)
    prim = {id(p) for p in model.task_parameters(0)}
    for t in (model.tower_prime, model.tower_second, model.gate_primary):
        assert all(id(p) in prim for p in t.parameters())
    assert (model.user_embedding is not None) == (n_users > 0)


def test_forward_is_mu_weighted_split_tower() -> None:
    model = _model(10, primary="conv")
    assert model.primary == 1
    batch = _batches(model_schema := _schema(10))[0]
    assert model_schema.n_users == 10
    with torch.no_grad():
        model.mu.copy_(torch.tensor([0.3, 1.7]))
        t1, t2, aux = model.branches(batch)
        logits = model(batch)
    assert logits.shape == (64, 2)
    torch.testing.assert_close(logits[:, 1], 0.3 * t1 + 1.7 * t2)
    torch.testing.assert_close(logits[:, 0], aux[:, 0])
    # representation: everything built from shared parameters (experts, G_s weights, x, user)
    z = model.representation
    assert z is not None and z.shape == (64, 3 * 8 + 3 + 2 * 4 + 3 + 4)


def test_losses_depend_on_shared_parameters_only_through_representation() -> None:
    """Chain rule through ``representation`` gives the full shared gradient (MGDA-UB)."""
    model = _model(10)
    batch = _batches(_schema(10))[0]
    shared = model.shared_parameters()
    for i, loss in enumerate(model.losses(batch)):
        direct = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
        (gz,) = torch.autograd.grad(loss, [model.representation], retain_graph=True)
        via = torch.autograd.grad(
            model.representation, shared, grad_outputs=gz, retain_graph=True, allow_unused=True
        )
        for a, b in zip(direct, via):
            if a is None:
                assert b is None or not b.any()
            else:
                torch.testing.assert_close(a, b, msg=f"task {i}")


def test_ppnet_gate_starts_as_identity_and_personalises() -> None:
    schema = _schema(10)
    gated = _model(10)
    plain = DRGradModel(schema, **SMALL, ppnet=False)
    res = plain.load_state_dict(gated.state_dict(), strict=False)
    assert not res.missing_keys and res.unexpected_keys  # gate + user embedding only
    batch = _batches(schema)[0]
    with torch.no_grad():
        torch.testing.assert_close(gated(batch), plain(batch), rtol=0, atol=0)
    # after training, the gate depends on the user
    method = DRGrad(gated, OptimizerConfig(lr=1e-2))
    _train(method, gated, _batches(schema), 10)
    other = dict(batch, user=(batch["user"] + 1) % 10)
    with torch.no_grad():
        assert not torch.allclose(gated(batch), gated(other))
        v = torch.randn(5, SMALL["user_dim"] + SMALL["expert_dim"])
        gate = gated.tower_second.gates[0](v)
        assert bool(((gate > 0) & (gate < 2)).all())
    with torch.no_grad():  # the ungated model ignores users entirely
        torch.testing.assert_close(plain(batch), plain(other), rtol=0, atol=0)


def test_gate_without_user_field() -> None:
    model = _model(0)
    assert model.user_embedding is None and model.tower_second.gates is None
    batch = _batches(_schema(0))[0]
    assert "user" not in batch
    assert torch.isfinite(model(batch)).all()
    with pytest.raises(InputError, match="model.ppnet"):
        _model(0, ppnet=True)
    gated = _model(10)
    with pytest.raises(InputError, match="'user'"):
        gated(_batches(_schema(10), users=False)[0])


def test_build_registry_and_bad_options() -> None:
    factory = registry.get("backbone", "drgrad")
    model = factory(_schema(4), tower_dims=[8, 4], expert_hidden=[8])
    assert isinstance(model, DRGradModel) and model.use_ppnet
    assert len(model.tower_prime.gates) == 2
    with pytest.raises(TypeError):
        build(_schema(), towers=3)  # the recipe checker reports it as model.towers
    with pytest.raises(InputError, match="model.primary"):
        build(_schema(), primary="nope")
    with pytest.raises(InputError, match="model.name"):
        build(Schema([3], 0, ["only"]))
    with pytest.raises(InputError, match="model.expert_dim"):
        build(_schema(), expert_dim=0)


# -- router (pure function) -----------------------------------------------------------------

vec = st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=6, max_size=6)


def _authors_formula(g: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Direct transcription of the authors' TF1 update for one tower kernel (model.py)."""
    gn, on = g / (np.linalg.norm(g) + 1e-8), o / (np.linalg.norm(o) + 1e-8)
    cos = float(gn @ on)
    a, b = gn.sum(), on.sum()
    weight = np.clip(a / b if b != 0 else 0.0, 0.1, 5.0)
    flag = 0.0 if cos <= 0 else 1.0
    return g + (o - (1.0 - flag) * cos * o) * weight


@settings(max_examples=60, deadline=None)
@given(vec, vec, st.sampled_from(["project", "code", "drop"]))
def test_route_rules(gl: list[float], ol: list[float], conflict: str) -> None:
    g = torch.tensor(gl, dtype=torch.float64)
    o = torch.tensor(ol, dtype=torch.float64)
    if float(g.norm()) < 1e-3 or float(o.norm()) < 1e-3:
        return
    r, (c,) = route(g, [o], conflict=conflict, scale="norm")
    assert c == pytest.approx(float(g @ o) / float(g.norm() * o.norm()), abs=1e-12)
    w = min(max(float(g.norm() / o.norm()), 0.1), 5.0)
    if c >= 0:  # cooperating: the other gradient passes unchanged (times w)
        torch.testing.assert_close(r, g + w * o)
    elif conflict == "project":  # the routed part is orthogonal to g: no opposing component
        part = r - g
        assert abs(float(part @ g)) <= 1e-9 * float(g.norm() * o.norm()) * w + 1e-12
        torch.testing.assert_close(r, g + w * (o - (o @ g) / (g @ g) * g))
        assert float(r @ g) == pytest.approx(float(g @ g), rel=1e-9)
        assert support(g, r) == pytest.approx(0.0, abs=1e-7)
    elif conflict == "code":  # the authors' (1 - cos) scaling
        torch.testing.assert_close(r, g + w * (1 - c) * o)
    else:
        torch.testing.assert_close(r, g)


@settings(max_examples=40, deadline=None)
@given(vec, vec)
def test_code_preset_matches_authors_formula(gl: list[float], ol: list[float]) -> None:
    g, o = np.array(gl, dtype=np.float64), np.array(ol, dtype=np.float64)
    if np.linalg.norm(g) < 1e-3 or np.linalg.norm(o) < 1e-3 or abs(float(g @ o)) < 1e-9:
        return
    r, _ = route(torch.from_numpy(g), [torch.from_numpy(o)], conflict="code", scale="code")
    np.testing.assert_allclose(r.numpy(), _authors_formula(g, o), rtol=1e-6, atol=1e-6)


def test_route_edge_cases() -> None:
    g = torch.tensor([1.0, 0.0])
    assert transfer_scale(g, torch.zeros(2)) == 0.0
    r, (c,) = route(g, [torch.zeros(2)])
    assert c == 0.0 and torch.equal(r, g)
    r, _ = route(g, [torch.tensor([-1.0, 1.0]), torch.tensor([0.0, 2.0])], scale=1.0)
    torch.testing.assert_close(r, torch.tensor([1.0, 3.0]))  # [0,1] after projection + [0,2]
    assert support(g, g) == 0.0
    with pytest.raises(InputError, match="method.conflict"):
        route(g, [g], conflict="pcgrad")


def test_updater_mu() -> None:
    torch.testing.assert_close(updater_mu([0.4, 0.4]), torch.ones(2, dtype=torch.float64))
    mu = updater_mu([0.5, -0.3], temperature=0.5)
    e = [math.exp(1.0), math.exp(-0.6)]
    torch.testing.assert_close(mu, 2 * torch.tensor(e, dtype=torch.float64) / sum(e))
    assert float(mu.sum()) == pytest.approx(2.0)


# -- method ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_users", [0, 10])
def test_router_disabled_is_ls_bit_for_bit(n_users: int) -> None:
    cfg = OptimizerConfig()  # Adam, lr 1e-3, weight decay 1e-6
    a = _model(n_users, seed=3)
    b, c = copy.deepcopy(a), copy.deepcopy(a)
    batches = _batches(_schema(n_users))
    ls, off = LS(a, cfg), DRGrad(b, cfg, router=False)
    on = DRGrad(c, cfg)
    for t in range(5):
        batch = batches[t % len(batches)]
        ls.step(a.losses(batch))
        off.step(b.losses(batch))
        on.step(c.losses(batch))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    assert torch.equal(b.mu, torch.ones(2))
    # the comparison can fail: with the router on, the primary towers differ
    assert not torch.equal(a.tower_second.layers[0].weight, c.tower_second.layers[0].weight)
    assert not torch.equal(c.mu, torch.ones(2))


def _forced(conflict_sign: float) -> tuple[DRGradModel, dict]:
    """T1'' and T2 identical, T1' silent: task gradients on (T1'', T2) are ± each other."""
    model = _model(0, seed=1)
    with torch.no_grad():
        model.tower_second.load_state_dict(model.aux_towers[0].state_dict())
        for p in model.tower_prime.layers[-1].parameters():
            p.zero_()
    batch = _batches(_schema(0))[0]
    y = batch["labels"][:, 0]
    batch["labels"] = torch.stack([y, y if conflict_sign > 0 else 1 - y], dim=1)
    return model, batch


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("conflict", ["project", "code", "drop"])
@pytest.mark.parametrize("route_aux", [False, True])
def test_method_applies_router_to_tower_gradients(
    sign: float, conflict: str, route_aux: bool
) -> None:
    model, batch = _forced(sign)
    ref = copy.deepcopy(model)
    lr = 0.1
    method = DRGrad(
        model,
        OptimizerConfig(name="sgd", lr=lr, weight_decay=0.0),
        conflict=conflict,
        route_aux=route_aux,
    )
    info = method.step(model.losses(batch))
    # independent per-task gradients
    l1, l2 = ref.losses(batch)
    w1s, w2 = ref.tower_second.layers[0].weight, ref.aux_towers[0].layers[0].weight
    w1p, emb = ref.tower_prime.layers[0].weight, ref.embeddings[0].weight
    b1s = ref.tower_second.layers[1].weight  # outside scope "first": plain gradient
    g1s, g1p, ge1, gb = torch.autograd.grad(l1, [w1s, w1p, emb, b1s], retain_graph=True)
    g2, ge2 = torch.autograd.grad(l2, [w2, emb])
    c = float(g1s.flatten() @ g2.flatten() / (g1s.norm() * g2.norm()))
    assert c * sign > 0.9  # the construction gives (anti-)parallel gradients
    assert info.extra["cos_second[conv]"] == pytest.approx(c, abs=1e-5)
    exp_s, _ = route(g1s.flatten(), [g2.flatten()], conflict=conflict)
    exp_p, _ = route(g1p.flatten(), [g2.flatten()], conflict=conflict)
    exp_2 = route(g2.flatten(), [g1s.flatten()], conflict=conflict)[0] if route_aux else g2
    with torch.no_grad():
        torch.testing.assert_close(
            model.tower_second.layers[0].weight, w1s - lr * exp_s.view_as(w1s)
        )
        torch.testing.assert_close(
            model.tower_prime.layers[0].weight, w1p - lr * exp_p.view_as(w1p)
        )
        torch.testing.assert_close(
            model.aux_towers[0].layers[0].weight, w2 - lr * exp_2.view_as(w2)
        )
        # shared parameters: plain LS gradient
        torch.testing.assert_close(model.embeddings[0].weight, emb - lr * (ge1 + ge2))
        torch.testing.assert_close(model.tower_second.layers[1].weight, b1s - lr * gb)
    if sign > 0:  # cooperating: the routed-in gradient agrees with the branch
        assert info.extra["support_second"] > 0.9
    elif conflict == "project":
        assert info.extra["support_second"] == pytest.approx(0.0, abs=1e-6)
    elif conflict == "code":
        assert info.extra["support_second"] < -0.9


def test_scope_all_routes_every_tower_tensor() -> None:
    model, batch = _forced(1.0)
    ref = copy.deepcopy(model)
    method = DRGrad(model, OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.0), scope="all")
    method.step(model.losses(batch))
    l1, l2 = ref.losses(batch)
    p1 = list(ref.tower_second.layers.parameters())
    p2 = list(ref.aux_towers[0].layers.parameters())
    g1 = torch.cat([g.flatten() for g in torch.autograd.grad(l1, p1)])
    g2 = torch.cat([g.flatten() for g in torch.autograd.grad(l2, p2)])
    expected = torch.cat([p.detach().flatten() for p in p1]) - 0.1 * route(g1, [g2])[0]
    got = torch.cat([p.detach().flatten() for p in model.tower_second.layers.parameters()])
    torch.testing.assert_close(got, expected)


def test_updater_moves_mu_toward_supported_branch() -> None:
    """T1' = -T1'' = -T2 on the same input: task 2 supports T1'' and conflicts with T1'."""
    model, batch = _forced(1.0)
    with torch.no_grad():
        model.gate_primary.load_state_dict(model.gate_shared.state_dict())
        model.tower_prime.load_state_dict(model.tower_second.state_dict())
        model.tower_prime.layers[-1].weight.neg_()
    method = DRGrad(model, OptimizerConfig(lr=1e-3), mu_momentum=0.5)
    s_bar = [0.0, 0.0]
    for _ in range(3):
        info = method.step(model.losses(batch))
        assert info.extra["cos_prime[conv]"] < -0.5
        assert info.extra["cos_prime[conv]"] == pytest.approx(
            -info.extra["cos_second[conv]"], abs=0.05
        )
        s = [info.extra["support_prime"], info.extra["support_second"]]
        assert s[0] == pytest.approx(0.0, abs=1e-6)  # conflicting, projected: no support
        s_bar = [0.5 * a + 0.5 * b for a, b in zip(s_bar, s)]
        expected = updater_mu(s_bar).float()
        torch.testing.assert_close(model.mu, expected)
        assert info.extra["mu_second"] == pytest.approx(float(expected[1]))
    assert float(model.mu.sum()) == pytest.approx(2.0)
    assert float(model.mu[1]) > 1.3 > 0.7 > float(model.mu[0])


@pytest.mark.parametrize("n_users", [0, 10])
def test_trains_with_decreasing_loss(n_users: int) -> None:
    schema = _schema(n_users)
    model = _model(n_users, seed=0)
    batches = _batches(schema, n=4)
    method = DRGrad(model, OptimizerConfig(lr=1e-2))

    def eval_loss() -> float:
        with torch.no_grad():
            return float(sum(sum(model.losses(b)) for b in batches))

    before = eval_loss()
    losses = _train(method, model, batches, 40)
    assert all(math.isfinite(x) for x in losses)
    assert eval_loss() < 0.9 * before
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


def test_three_tasks_route_every_auxiliary_task() -> None:
    schema = _schema(0, tasks=("a", "b", "c"))
    torch.manual_seed(0)
    model = DRGradModel(schema, **SMALL, primary="b")
    check_split(model)
    batches = _batches(schema, n=2)
    ref = copy.deepcopy(model)
    method = DRGrad(model, OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.0))
    info = method.step(model.losses(batches[0]))
    assert set(info.extra) >= {"cos_second[a]", "cos_second[c]", "cos_prime[a]"}
    losses = ref.losses(batches[0])
    w = ref.tower_second.layers[0].weight
    g1 = torch.autograd.grad(losses[1], [w])[0].flatten()
    ga = torch.autograd.grad(losses[0], [ref.aux_tower(0).layers[0].weight])[0].flatten()
    gc = torch.autograd.grad(losses[2], [ref.aux_tower(2).layers[0].weight])[0].flatten()
    expected = w.detach() - 0.1 * route(g1, [ga, gc])[0].view_as(w)
    torch.testing.assert_close(model.tower_second.layers[0].weight.detach(), expected)
    losses = _train(method, model, batches, 20)
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


def test_state_dict_resumes_bit_for_bit() -> None:
    batches = _batches(_schema(10))
    a = _model(10)
    ma = DRGrad(a, OptimizerConfig(lr=1e-2))
    _train(ma, a, batches, 3)
    b = copy.deepcopy(a)
    mb = DRGrad(b, OptimizerConfig(lr=1e-2))
    mb.load_state_dict(copy.deepcopy(ma.state_dict()))
    with torch.no_grad():
        b.mu.fill_(7.0)
    mb.load_state_dict(copy.deepcopy(ma.state_dict()))  # restores μ too
    _train(ma, a, batches, 3)
    _train(mb, b, batches, 3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(a.mu, b.mu)


class _Other(MultiTaskModel):
    def __init__(self) -> None:
        super().__init__()
        self.n_tasks, self.task_names = 2, ["a", "b"]
        self.lin = torch.nn.Linear(2, 2)


def test_method_input_errors() -> None:
    with pytest.raises(InputError, match="model.name: drgrad"):
        DRGrad(_Other(), OptimizerConfig())
    model = _model()
    for kw, field in [
        ({"scope": "last"}, "method.scope"),
        ({"conflict": "x"}, "method.conflict"),
        ({"scale": "big"}, "method.scale"),
        ({"scale": -1.0}, "method.scale"),
        ({"scale_min": 2.0, "scale_max": 1.0}, "method.scale_min"),
        ({"mu_momentum": 1.0}, "method.mu_momentum"),
        ({"mu_temperature": 0.0}, "method.mu_temperature"),
    ]:
        with pytest.raises(InputError, match=field):
            DRGrad(model, OptimizerConfig(), **kw)
    assert registry.get("method", "drgrad") is DRGrad


def _train_on_dataset(dataset, epochs: int = 2, bs: int = 128, **model_kw) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build(dataset.schema, **{**SMALL, **model_kw})
    method = DRGrad(model, OptimizerConfig(lr=1e-2))

    def eval_loss() -> float:
        with torch.no_grad():
            return float(
                np.mean([float(sum(model.losses(b))) for b in dataset.batches("train", 256)])
            )

    before = eval_loss()
    for epoch in range(epochs):
        for batch in dataset.batches("train", bs, shuffle=True, seed=0, epoch=epoch):
            info = method.step(model.losses(batch))
            assert math.isfinite(info.loss)
    return before, eval_loss()


@pytest.mark.parametrize("n_users", [0, 20])
def test_trains_on_synthetic_ranking(n_users: int) -> None:
    ds = registry.get("dataset", "synthetic-ranking")(
        n_train=1024, n_val=64, n_test=64, n_users=n_users, seed=0
    )
    batch = next(iter(ds.batches("train", 8)))
    assert ("user" in batch) == (n_users > 0)
    before, after = _train_on_dataset(ds)
    assert after < 0.7 * before


def test_trains_on_census_income_format(tmp_path) -> None:
    from mtopt.data.census import write_synthetic_census_files

    folder = write_synthetic_census_files(tmp_path, n_train=1024, n_test=256, seed=0)
    ds = registry.get("dataset", "census-income")(path=str(folder))
    assert ds.schema.n_users == 0  # no user field: the gate is disabled
    assert ds.schema.task_names[0] == "income"
    before, after = _train_on_dataset(ds, primary="income")
    assert after < 0.7 * before
