"""Method wrappers ``pub``, ``pub-clippy``, ``pub-adatask``, ``clippy-adam``, ``adatask``."""

from __future__ import annotations

import math

import pytest
import torch

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig, StepInfo
from mtopt.registry import registry

NAMES = ["pub", "pub-clippy", "pub-adatask", "clippy-adam", "adatask"]


def _model(seed: int = 0):
    torch.manual_seed(seed)
    schema = Schema([6, 5, 4], 2, ["ctr", "ctcvr"])
    return registry.get("backbone", "mmoe")(schema, expert_dim=8, tower_dims=[4])


def _batch(t: int) -> dict:
    g = torch.Generator().manual_seed(t)
    return {
        "cat": torch.stack([torch.randint(0, c, (32,), generator=g) for c in (6, 5, 4)], 1),
        "dense": torch.randn(32, 2, generator=g),
        "labels": (torch.rand(32, 2, generator=g) < 0.4).float(),
    }


@pytest.mark.parametrize("name", NAMES)
def test_registered_method_trains_and_resumes(name):
    cfg = OptimizerConfig(lr=0.01)
    model = _model()
    method = registry.get("method", name)(model, cfg)
    infos = [method.step(model.losses(_batch(t))) for t in range(3)]
    assert all(isinstance(i, StepInfo) for i in infos)
    assert all(math.isfinite(i.loss) and len(i.weights) == 2 for i in infos)
    state = method.state_dict()
    # resume into a fresh copy: the next step is identical
    model2 = _model(seed=1)
    model2.load_state_dict(model.state_dict())
    method2 = registry.get("method", name)(model2, cfg)
    method2.load_state_dict(state)
    method.step(model.losses(_batch(9)))
    method2.step(model2.losses(_batch(9)))
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)


def test_pub_method_reports_alpha_status_and_diagnostics():
    model = _model()
    method = registry.get("method", "pub")(
        model, OptimizerConfig(lr=0.01), solve_every=2, diagnostics=True, alpha_scale="exact"
    )
    info = method.step(model.losses(_batch(0)))
    assert info.weights == method.opt.last.alpha and info.solver_status == "ok"
    assert info.solve_seconds is not None and info.extra["residual"] <= 1e-6
    assert {"cos_shared", "cos_task", "diff"} <= set(info.extra)
    info = method.step(model.losses(_batch(1)))
    assert info.solver_status == "reused" and info.solve_seconds is None
    assert info.extra["n_solves"] == 1 and info.extra["n_reuses"] == 1


def test_optimizer_config_maps_to_the_base_rule():
    model = _model()
    cfg = OptimizerConfig(name="rmsprop", lr=0.01, weight_decay=0.0, extra={"alpha": 0.9})
    method = registry.get("method", "pub")(model, cfg)
    g = method.opt.param_groups[0]
    assert (
        g["alpha"] == 0.9
        and g["eps"] == 1e-8
        and method.opt.task_optimizer.param_groups[0]["alpha"] == 0.9
    )
    with pytest.raises(InputError, match="optimizer.extra"):
        registry.get("method", "pub")(model, OptimizerConfig(name="rmsprop", extra={"momentum": 1}))
    with pytest.raises(InputError, match="optimizer.name"):
        registry.get("method", "adatask")(model, OptimizerConfig(name="sgd"))
    with pytest.raises(InputError, match="optimizer.name"):
        registry.get("method", "clippy-adam")(model, OptimizerConfig(name="adagrad"))
