"""Old import paths of moved public names: they keep working for one release, with a
DeprecationWarning naming the new home, and nothing inside mtopt uses them."""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mtopt"

#: (old module, name, new module)
MOVED = [
    ("mtopt.train.trainer", "build_components", "mtopt.train.build"),
    ("mtopt.train.trainer", "embedding_kwargs", "mtopt.train.build"),
    ("mtopt.train.trainer", "RUN_FILES", "mtopt.train.rundir"),
    ("mtopt.optim.pub", "gram64", "mtopt.optim.balance"),
    ("mtopt.optim.pub", "diff_metric", "mtopt.optim.diagnostics"),
    ("mtopt.optim.pub", "LastStep", "mtopt.optim.diagnostics"),
    ("mtopt.methods.loss_weighting", "DWA", "mtopt.methods.loss.dwa"),
    ("mtopt.methods.loss_weighting", "FAMO", "mtopt.methods.loss.famo"),
    ("mtopt.methods.gradient", "NashMTL", "mtopt.methods.grad.nashmtl"),
    ("mtopt.methods.gradient", "MGDA", "mtopt.methods.grad.mgda"),
    ("mtopt.config", "check_components", "mtopt.train.components"),
]
DEPRECATED_MODULES = {
    "mtopt.methods.loss_weighting",
    "mtopt.methods.gradient",
    "mtopt.solvers.compare",
}


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_old_path_warns_and_gives_the_same_object(old: str, name: str, new: str) -> None:
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} is deprecated.*{new}"):
        obj = getattr(module, name)
    assert obj is getattr(importlib.import_module(new), name)


def test_nothing_inside_mtopt_imports_a_deprecated_path() -> None:
    moved = {(old, name) for old, name, _ in MOVED}
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        if rel in DEPRECATED_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module in DEPRECATED_MODULES:
                    bad.append((rel, node.module))
                bad += [(rel, f"{node.module}.{a.name}") for a in node.names
                        if (node.module, a.name) in moved]  # fmt: skip
            elif isinstance(node, ast.Import):
                bad += [(rel, a.name) for a in node.names if a.name in DEPRECATED_MODULES]
    assert not bad, bad


def test_current_paths_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from mtopt.methods.grad.nashmtl import NashMTL  # noqa: F401
        from mtopt.optim import PUB, diff_metric, gram64  # noqa: F401
        from mtopt.train.build import build_components  # noqa: F401
        from mtopt.train.trainer import Trainer, train  # noqa: F401
