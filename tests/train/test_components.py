"""Names resolved once, at the composition root; objects passed down; no lookup per step."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mtopt_train_fakes as fakes  # noqa: E402

from mtopt import catalog  # noqa: E402
from mtopt.config import recipe_from_dict  # noqa: E402
from mtopt.errors import InputError, UnknownNameError  # noqa: E402
from mtopt.optim.umm import ClippyUMM  # noqa: E402
from mtopt.registry import registry  # noqa: E402
from mtopt.solvers import backends, solve  # noqa: E402
from mtopt.train.build import build_components  # noqa: E402
from mtopt.train.components import resolve_components  # noqa: E402

CALLS: list[int] = []
NEWTON = backends.get_solver("newton")


def _plugin_solver(G, *, tol, alpha0=None):
    """Stands in for a plugin backend: newton, counted."""
    CALLS.append(len(G))
    return solve(G, NEWTON, tol=tol, alpha0=alpha0)


@pytest.fixture
def plugin_solver():
    registry.register("solver", "plugin-newton", _plugin_solver, "test: a plugin backend")
    yield "plugin-newton"
    registry.unregister("solver", "plugin-newton")


def _pub(**method):
    raw = fakes.fake_recipe(method={"name": "pub", **method})
    return recipe_from_dict(raw, "r.yaml")


def test_recipe_solver_reaches_pub_as_the_registered_object(plugin_solver, monkeypatch) -> None:
    """A plugin solver named in a recipe is resolved once by the composition root; after
    construction no name is looked up again (catalog and registry lookups would raise)."""
    rec = _pub(solver=plugin_solver, umm="clippy")
    found = resolve_components(rec)
    assert found.solver.fn is _plugin_solver and found.umm is ClippyUMM
    dataset, model, method = build_components(rec)
    assert method.opt.balance.backend.fn is _plugin_solver
    assert method.opt.solver == "plugin-newton"

    def no_lookup(*a, **k):
        raise AssertionError("a name was looked up after construction")

    monkeypatch.setattr(catalog, "builtin", no_lookup)
    monkeypatch.setattr(backends, "get_solver", no_lookup)
    monkeypatch.setattr(registry, "entry", no_lookup)
    CALLS.clear()
    for _, batch in zip(range(3), dataset.batches("train", 64)):
        method.step(model.losses(batch))
    assert CALLS == [2, 2, 2]


def test_library_names_are_builtins_plugins_are_objects() -> None:
    """``PUB(solver=name)`` resolves built-in names from the catalog; a name only the registry
    knows is refused with the way to pass the object instead."""
    from mtopt.optim import PUB
    from mtopt.solvers import get_solver

    assert get_solver("NEWTON").name == "newton"
    registry.register("solver", "only-in-registry", _plugin_solver, "test")
    try:
        with pytest.raises(UnknownNameError, match=r"not a built-in solver.*registry"):
            get_solver("only-in-registry")
        p = torch.nn.Parameter(torch.zeros(3, 2))
        with pytest.raises(UnknownNameError, match="only-in-registry"):
            PUB([p], [[], []], solver="only-in-registry")
        with pytest.raises(UnknownNameError, match=r"unknown umm 'nope' \(known: adatask, clippy"):
            PUB([p], [[], []], umm="nope")
    finally:
        registry.unregister("solver", "only-in-registry")


def test_recipe_weighting_resolved_once_and_reaches_pub(monkeypatch) -> None:
    """``method.weighting`` is a registry lookup at the composition root; PUB gets the class."""
    from mtopt.weightings.upgrad import UPGrad

    rec = _pub(weighting="upgrad", groups="embeddings-vs-trunk")
    found = resolve_components(rec)
    assert found.weighting is UPGrad
    monkeypatch.setattr(catalog, "builtin", lambda *a, **k: pytest.fail("looked up again"))
    _, _, method = build_components(rec)
    assert isinstance(method.opt.balance.groups[0].weighting, UPGrad)
    assert method.opt.weighting == "upgrad"


def test_recipe_default_nash_weighting_keeps_the_solver_path() -> None:
    _, _, method = build_components(_pub(weighting="nash"))
    assert method.opt.balance.weighting is None and method.opt.weighting == "nash"


def test_unknown_recipe_weighting_names_the_field() -> None:
    with pytest.raises(InputError, match="method.weighting: unknown weighting"):
        resolve_components(_pub(weighting="nope"))
