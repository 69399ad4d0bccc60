"""The packed representation's two gradient routes (``mtopt.models.layers.Route``).

Until ``model.representation`` is read, the heads' gradients go to the trunk parts directly (no
full-width ``∂z`` per backward pass); once it is read, through ``z``. Both must give the very
same bits as the views-of-``z`` packing that came before.
"""

from __future__ import annotations

import pytest
import torch

import mtopt.models.backbone as backbone
from mtopt.data.base import Schema
from mtopt.models.base import MultiTaskModel
from mtopt.registry import registry


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SCHEMA = Schema(cat_cardinalities=[50, 30, 20], n_dense=4, task_names=["a", "b", "c"])
CONFIGS = [
    ("mmoe", {"expert_dim": 16}),
    ("mmoe", {"expert_dim": 16, "n_layers": 1}),
    ("mmoe", {"expert_dim": [16, 8, 8], "n_layers": 3}),
    ("ple", {"expert_dim": 16, "n_shared": 3, "n_specific": 2}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 2, "n_layers": 1}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 2, "n_layers": 3}),
    ("mmoe", {"expert_dim": 16, "esmm": True}),  # keeps the views of z (no route)
]


def _batch(n: int = 256) -> dict:
    g = torch.Generator().manual_seed(1)
    cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in SCHEMA.cat_cardinalities], 1)
    return {
        "cat": cat,
        "dense": torch.randn(n, SCHEMA.n_dense, generator=g),
        "labels": (torch.rand(n, SCHEMA.n_tasks, generator=g) < 0.4).float(),
    }


def _task_grads(name: str, cfg: dict, mode: str) -> list[tuple[torch.Tensor | None, ...]]:
    """Per-task gradients of all parameters, one ``autograd.grad`` per loss (as PUB's loop)."""
    torch.manual_seed(0)
    model = registry.get("backbone", name)(SCHEMA, tower_dims=[8], **cfg)
    params = list(model.parameters())
    losses = model.losses(_batch())
    if mode == "via_z":
        assert isinstance(model.representation, torch.Tensor)  # reading it switches the route
    return [torch.autograd.grad(L, params, retain_graph=True, allow_unused=True) for L in losses]


def _same_bits(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return torch.equal(a.view(torch.int32), b.view(torch.int32))  # signed zeros included


@pytest.mark.parametrize("name, cfg", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_routes_give_the_bits_of_views_of_z(
    name: str, cfg: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _task_grads(name, cfg, "direct")
    via_z = _task_grads(name, cfg, "via_z")
    monkeypatch.setattr(backbone, "Route", lambda: None)  # pack() without a route: views of z
    views = _task_grads(name, cfg, "direct")
    for t, (d, v, w) in enumerate(zip(direct, via_z, views)):
        for k, (x, y, z) in enumerate(zip(d, v, w)):
            assert _same_bits(x, z), f"task {t}, parameter {k}: direct route differs"
            assert _same_bits(y, z), f"task {t}, parameter {k}: route through z differs"


def test_direct_route_skips_dz_and_reading_the_representation_restores_it() -> None:
    torch.manual_seed(0)
    model = registry.get("backbone", "mmoe")(SCHEMA, expert_dim=8, tower_dims=[4])
    shared = model.shared_parameters()
    losses = model.losses(_batch())
    z = model.__dict__["_representation"]  # behind the property's back: route stays direct
    seen: list[torch.Tensor] = []
    z.register_hook(lambda g: seen.append(g) if g is not None else None)
    torch.autograd.grad(losses[0], shared, retain_graph=True)
    assert seen == [], "the direct route formed ∂z"  # (the hook may see an undefined grad)
    assert model.representation is z  # now handed out: the next passes go through z
    (gz,) = torch.autograd.grad(losses[1], z, retain_graph=True)
    assert len(seen) == 1 and seen[0].shape == z.shape and torch.equal(seen[0], gz)
    # a new forward starts on the direct route again
    model.losses(_batch())
    assert model.__dict__["_route"].via_z is False


LOSS_CONFIGS = [
    ("mmoe", {"expert_dim": 16}),
    ("mmoe", {"expert_dim": 16, "pack_representation": False}),
    ("ple", {"expert_dim": 16, "n_shared": 3, "n_specific": 2}),
    ("ple", {"expert_dim": 8, "n_shared": 2, "n_specific": 2, "n_layers": 3}),
    ("shared-bottom", {"bottom_dims": [16, 8]}),
]


@pytest.mark.parametrize(
    "name, cfg", LOSS_CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(LOSS_CONFIGS)]
)
def test_losses_visit_one_head_and_give_the_bits_of_the_stacked_logits(
    name: str, cfg: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Backbone.losses`` computes task i's loss from head i's logits (task i's backward then
    visits head i only), with the bits of the BCE on column i of the stacked ``[B, n]`` logits
    (``MultiTaskModel.losses``, the code before) — losses and every gradient."""

    def grads(new: bool) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor | None, ...]]]:
        torch.manual_seed(0)
        model = registry.get("backbone", name)(SCHEMA, tower_dims=[8], **cfg)
        params = list(model.parameters())
        batch = _batch()
        losses = model.losses(batch) if new else MultiTaskModel.losses(model, batch)
        gs = [torch.autograd.grad(L, params, retain_graph=True, allow_unused=True) for L in losses]
        return losses, gs

    monkeypatch.setattr(backbone, "Route", lambda: None)  # the views of z, as before
    old_losses, old = grads(new=False)
    monkeypatch.undo()
    new_losses, new = grads(new=True)
    skipped = 0
    for t, (lo, ln) in enumerate(zip(old_losses, new_losses)):
        assert _same_bits(lo.detach(), ln.detach()), f"loss {t} differs"
        for k, (x, y) in enumerate(zip(old[t], new[t])):
            if y is None and x is not None:  # another head's parameter: no longer visited
                assert not x.any(), f"task {t}, parameter {k}: skipped but not zero before"
                skipped += 1
            else:
                assert _same_bits(x, y), f"task {t}, parameter {k} differs"
    assert skipped > 0, "every head is still visited by every task's backward pass"
