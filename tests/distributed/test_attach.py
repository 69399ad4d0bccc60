"""How :func:`mtopt.distributed.attach` wires each built-in method family (no process group:
``attach`` only sets hooks, the collectives run later)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dist_workers  # noqa: E402

from mtopt.config import recipe_from_dict  # noqa: E402
from mtopt.distributed import DistContext, attach  # noqa: E402
from mtopt.errors import RunError  # noqa: E402
from mtopt.optim.multitask import MultiTaskUpdate  # noqa: E402
from mtopt.train.build import build_components  # noqa: E402

TWO = DistContext(rank=0, world_size=2)


def _method(method: dict, model: dict | None = None):
    raw = {k: dict(v) for k, v in dist_workers.TINY.items()}
    raw["method"] = dict(method)
    if model is not None:
        raw["model"] = dict(model)
    return build_components(recipe_from_dict(raw, "attach.yaml"))[2]


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ({"name": "pub", "solver": "newton"}, "update-level"),
        ({"name": "pub", "solver": "newton", "embeddings": "row-wise"}, "update-level"),
        ({"name": "pub-adatask", "solver": "newton"}, "update-level"),
        ({"name": "adatask"}, "update-level"),
        ({"name": "clippy-adam"}, "loss-level"),
        ({"name": "ls"}, "loss-level"),
        ({"name": "dwa"}, "loss-level"),
        ({"name": "famo"}, "loss-level"),
        ({"name": "mgda"}, "gradient-level"),
        ({"name": "pcgrad"}, "gradient-level"),
    ],
)
def test_attach_kind_per_family(method: dict, kind: str) -> None:
    m = _method(method)
    assert attach(m, DistContext()) == "single"
    assert m.grad_reducer is None
    assert attach(m, TWO) == kind
    if kind == "update-level":
        assert isinstance(m.opt, MultiTaskUpdate)
        assert m.opt.grad_reducer == TWO.grad_reducer
        assert m.opt.row_reducer == TWO.reduce_rows
    # only the gradient-level methods get the per-task hook; the others keep the default
    assert (m.grad_reducer is not None) == (kind == "gradient-level")


def test_drgrad_router_is_single_process_only() -> None:
    m = _method({"name": "drgrad"}, {"name": "drgrad"})
    assert m.single_process_only
    with pytest.raises(RunError, match="several processes"):
        attach(m, TWO)
    plain = _method({"name": "drgrad", "router": False}, {"name": "drgrad"})
    assert not plain.single_process_only
    assert attach(plain, TWO) == "loss-level"
