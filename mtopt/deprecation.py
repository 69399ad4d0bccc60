"""Deprecated import paths, kept for one release: one helper instead of a copy per module.

A module whose public names moved sets ``__getattr__, __dir__ = moved(__name__, {...})``:
reading a moved name emits a :class:`DeprecationWarning` that names the new home and returns
the same object. A plain ``import`` of the old module does not warn. Nothing inside
:mod:`mtopt` imports a deprecated path (``tests/test_deprecations.py`` checks both).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def moved(
    module: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``module`` whose ``names`` moved to ``names[name]``
    (a module path; the attribute keeps its name)."""

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated (kept for one release); import it from {target}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(target), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
