"""Backbones: the shared / task-specific split (by gradients), representation, ESMM, options."""

from __future__ import annotations

import copy

import pytest
import torch

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.models.backbone import esmm_log_probs, log1mexp
from mtopt.models.base import check_split
from mtopt.registry import registry


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is fastest and immune to CPU oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SCHEMA2 = Schema(cat_cardinalities=[7, 5, 3], n_dense=4, task_names=["click", "conversion"])
SCHEMA3 = Schema(cat_cardinalities=[7, 5], n_dense=3, task_names=["a", "b", "c"], n_users=6)

CONFIGS = [
    ("shared-bottom", {"bottom_dims": [16, 8]}),
    ("mmoe", {"expert_dim": 8}),
    ("mmoe", {"expert_dim": 8, "n_layers": 1}),
    ("mmoe", {"expert_dim": [8, 6, 4], "n_layers": 3}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 2}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 2, "n_layers": 1}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 3, "n_layers": 3}),
    ("stl", {"bottom_dims": [8]}),
    ("shared-bottom", {"bottom_dims": [16], "esmm": True}),
    ("mmoe", {"expert_dim": 8, "esmm": True}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 2, "esmm": True, "n_layers": 3}),
    ("mmoe", {"expert_dim": 8, "pack_representation": False}),
]


def _batch(schema: Schema, n: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in schema.cat_cardinalities], 1)
    b = {
        "cat": cat,
        "dense": torch.randn(n, schema.n_dense, generator=g),
        "labels": (torch.rand(n, schema.n_tasks, generator=g) < 0.5).float(),
    }
    if schema.n_users:
        b["user"] = torch.randint(0, schema.n_users, (n,), generator=g)
    return b


def _model(name: str, schema: Schema, seed: int = 0, **cfg):
    torch.manual_seed(seed)
    return registry.get("backbone", name)(schema, tower_dims=[4], **cfg)


def _nonzero(g: torch.Tensor | None) -> bool:
    return g is not None and bool(g.abs().max() > 0)


@pytest.mark.parametrize("schema", [SCHEMA2, SCHEMA3], ids=["2tasks", "3tasks+user"])
@pytest.mark.parametrize("name, cfg", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_split_is_correct_by_gradients(name: str, cfg: dict, schema: Schema) -> None:
    model = _model(name, schema, **cfg)
    check_split(model)  # shared and task groups partition the parameters
    losses = model.losses(_batch(schema))
    n = model.n_tasks
    params = list(model.parameters())
    grads = []
    for j in range(n):
        g = torch.autograd.grad(losses[j], params, retain_graph=True, allow_unused=True)
        grads.append({id(p): gj for p, gj in zip(params, g)})
    for j in range(n):
        for i in range(n):
            for p in model.task_parameters(i):
                # task j's loss never touches task i's parameters; task i's always does
                assert _nonzero(grads[j][id(p)]) == (i == j)
    for p in model.shared_parameters():
        users = [j for j in range(n) if _nonzero(grads[j][id(p)])]
        if cfg.get("esmm"):
            # ESMM chains the towers: tower k feeds tasks >= k, so a shared parameter is
            # used by at least two tasks (all tasks, for everything before the towers)
            assert len(users) >= 2
        else:
            assert users == list(range(n))


def test_stl_shares_nothing() -> None:
    model = _model("stl", SCHEMA2, bottom_dims=[8])
    assert model.shared_parameters() == []
    model(_batch(SCHEMA2))
    assert model.representation is None
    with pytest.raises(InputError, match="model.esmm"):
        _model("stl", SCHEMA2, esmm=True)


def test_ple_layer1_task_experts_are_shared_and_gates_task_specific() -> None:
    model = _model("ple", SCHEMA2, expert_dim=8)  # defaults: 2 layers, 8 + 8 experts
    assert model.n_shared == 8 and model.n_specific == 8 and model.n_layers == 2
    shared = {id(p) for p in model.shared_parameters()}
    task0 = {id(p) for p in model.task_parameters(0)}
    assert all(id(p) in shared for p in model.task_experts[0][0].parameters())
    assert all(id(p) in task0 for p in model.task_experts[1][0].parameters())
    assert all(id(p) in task0 for p in model.task_gates[0][0].parameters())
    assert all(id(p) in shared for p in model.shared_gates[0].parameters())


@pytest.mark.parametrize("name, cfg", [c for c in CONFIGS if c[0] != "stl"])
def test_representation_carries_every_shared_gradient(name: str, cfg: dict) -> None:
    """∂L_i/∂θ_shared = (∂z/∂θ_shared)ᵀ ∂L_i/∂z: z is a complete cut (MGDA-UB's premise)."""
    model = _model(name, SCHEMA2, **cfg)
    losses = model.losses(_batch(SCHEMA2))
    rep = model.representation
    reps = [rep] if isinstance(rep, torch.Tensor) else list(rep)
    assert isinstance(rep, torch.Tensor) == cfg.get("pack_representation", True)
    shared = model.shared_parameters()
    for loss in losses:
        direct = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
        gz = torch.autograd.grad(loss, reps, retain_graph=True, allow_unused=True)
        gz = [torch.zeros_like(r) if g is None else g for r, g in zip(reps, gz)]
        chained = torch.autograd.grad(reps, shared, gz, retain_graph=True, allow_unused=True)
        for d, c in zip(direct, chained):
            d = torch.zeros(()) if d is None else d
            c = torch.zeros(()) if c is None else c
            torch.testing.assert_close(d, c, rtol=1e-4, atol=1e-6)


def test_esmm_probability_is_the_product_and_loss_is_bce_of_it() -> None:
    model = _model("mmoe", SCHEMA2, expert_dim=8, esmm=True)
    batch = _batch(SCHEMA2)
    logits = model(batch)
    p = model.probabilities(batch)
    torch.testing.assert_close(p[:, 0], torch.sigmoid(logits[:, 0]))
    torch.testing.assert_close(p[:, 1], torch.sigmoid(logits[:, 0]) * torch.sigmoid(logits[:, 1]))
    losses = model.losses(batch, logits)
    y = batch["labels"]
    naive = torch.nn.functional.binary_cross_entropy(p[:, 1].double(), y[:, 1].double())
    torch.testing.assert_close(losses[1].double(), naive, rtol=1e-5, atol=1e-6)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y[:, 0])
    torch.testing.assert_close(losses[0], plain)


def test_esmm_loss_is_stable_for_extreme_logits() -> None:
    logits = torch.tensor(
        [[60.0, 60.0], [-60.0, 5.0], [30.0, -80.0], [0.0, 0.0], [1e-3, 40.0]], requires_grad=True
    )
    log_p, log_q = esmm_log_probs(logits)
    ref_p = torch.cumsum(torch.nn.functional.logsigmoid(logits.double()), 1)
    torch.testing.assert_close(log_p.double(), ref_p, rtol=1e-6, atol=1e-6)
    p = torch.exp(ref_p)
    ok = p < 1 - 1e-6  # where 1 - p is representable in float64 reference
    ref_q = torch.log1p(-p)
    torch.testing.assert_close(log_q.double()[ok], ref_q[ok], rtol=1e-5, atol=1e-6)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    loss = -(y * log_p[:, 1] + (1 - y) * log_q[:, 1].clamp(min=-100)).mean()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    a = torch.tensor([-1e-8, -0.5, -0.7, -30.0], dtype=torch.float64)
    torch.testing.assert_close(log1mexp(a), torch.log(-torch.expm1(a)))


def test_forward_shapes_seeding_and_deepcopy() -> None:
    for name, cfg in CONFIGS:
        a = _model(name, SCHEMA3, seed=5, **cfg)
        b = _model(name, SCHEMA3, seed=5, **cfg)
        batch = _batch(SCHEMA3)
        out = a(batch)
        assert out.shape == (32, 3) and out.dtype == torch.float32
        torch.testing.assert_close(out, b(batch), rtol=0, atol=0)
        c = copy.deepcopy(a)  # after a forward pass (representation holds a graph)
        torch.testing.assert_close(c(batch), out, rtol=0, atol=0)


def test_user_field_is_embedded_and_required() -> None:
    model = _model("mmoe", SCHEMA3, expert_dim=8)
    assert model.inputs.user is not None
    batch = _batch(SCHEMA3)
    del batch["user"]
    with pytest.raises(InputError, match="user"):
        model(batch)
    assert _model("mmoe", SCHEMA3, expert_dim=8, embed_user=False).inputs.user is None


def test_dense_only_schema_passes_raw_features() -> None:
    schema = Schema(cat_cardinalities=[], n_dense=20, task_names=["l", "r"])
    model = _model("mmoe", schema, expert_dim=8)
    assert model.inputs.dense is None and model.inputs.out_dim == 20
    batch = {"cat": torch.zeros(5, 0, dtype=torch.long), "dense": torch.randn(5, 20),
             "labels": torch.zeros(5, 2)}  # fmt: skip
    assert model(batch).shape == (5, 2)


def test_mmoe_width_and_parameter_count() -> None:
    """Shared parameter count of the default 2-layer MMoE, by hand: with 16 embedded fields
    and expert_dim 256 the expert layers alone hold ≈1.09e6 parameters (the PUB benchmark's
    ~1e6 shared parameters)."""
    cards = [10] * 16
    schema = Schema(cat_cardinalities=cards, n_dense=63, task_names=["click", "conversion"])
    e, h, k = 16, 256, 8
    model = _model("mmoe", schema, expert_dim=h, embed_dim=e)
    d_in = 16 * e + e
    expected = (
        sum(cards) * e  # embedding tables
        + 63 * e
        + e  # dense projection
        + k * (d_in * h + h)  # layer-1 experts
        + (d_in * k + k)  # layer-1 shared gate
        + k * (h * h + h)  # layer-2 experts
    )
    assert sum(p.numel() for p in model.shared_parameters()) == expected
    experts = k * (d_in * h + h) + k * (h * h + h)
    assert 1.0e6 < experts < 1.2e6
    gates_and_tower = 2 * (d_in * k + k) - (d_in * k + k) + (h * k + k)  # task gates
    assert sum(p.numel() for p in model.task_parameters(0)) == (
        gates_and_tower + (h * 4 + 4) + (4 + 1)
    )


@pytest.mark.parametrize(
    "name, cfg, field",
    [
        ("mmoe", {"colour": 1}, "colour"),
        ("mmoe", {"n_layers": 0}, "n_layers"),
        ("mmoe", {"n_experts": 0}, "n_experts"),
        ("ple", {"n_specific": 0}, "n_specific"),
        ("ple", {"expert_dim": [8, 8, 8]}, "expert_dim"),
        ("shared-bottom", {"bottom_dims": [0]}, "bottom_dims"),
        ("shared-bottom", {"dropout": 1.5}, "dropout"),
        ("stl", {"n_experts": 3}, "n_experts"),
    ],
)
def test_bad_options_name_the_field(name: str, cfg: dict, field: str) -> None:
    with pytest.raises(InputError, match=f"model.{field}"):
        _model(name, SCHEMA2, **cfg)
