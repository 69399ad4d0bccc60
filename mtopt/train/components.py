"""Recipe names -> components, resolved once, at the composition root.

A recipe names its components (``data.name``, ``model.name``, ``method.name``, ``method.solver``,
``method.umm``). This module is the one place where those names meet :mod:`mtopt.registry`
(built-ins from :mod:`mtopt.catalog` plus the ``mtopt.plugins`` entry points): each name is
looked up once, the free keyword arguments of ``data``, ``model`` and ``method`` are checked
against the resolved factory's signature, and :func:`mtopt.train.build.build_components` hands
the resolved *objects* down — a :class:`mtopt.solvers.Backend` for an α solver, UMM factories
for ``method.umm`` — so no layer below looks a name up again.

Every error is an :class:`~mtopt.errors.InputError` naming the file and the recipe field, e.g.
``recipe.yaml: method.solver: unknown solver 'newtn' (known: ccp, ...)``.

Importing this module does not import torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtopt import config
from mtopt.config import Recipe
from mtopt.errors import InputError, UnknownNameError
from mtopt.registry import Entry, registry
from mtopt.solvers.backends import Backend
from mtopt.train.validate import dataset_kwargs, max_vocab


@dataclass
class Components:
    """The registry entries of a recipe's names, and the method options with objects in place
    of the names of an α solver and of UMMs (:meth:`method_kwargs`)."""

    dataset: Entry
    backbone: Entry
    method: Entry
    #: ``method.solver`` as a backend, when the method takes an α solver (``alpha_solver``)
    solver: Backend | None = None
    #: ``method.umm`` as factories (one, or a list as the recipe gave it)
    umm: Any = None
    #: ``method.weighting`` as a Weighting class (PUB-family methods: ``alpha_solver``)
    weighting: Any = None

    def method_kwargs(self, recipe: Recipe) -> dict[str, Any]:
        """``recipe.method.kwargs()`` with the resolved solver and UMM factories."""
        kw = recipe.method.kwargs()
        if self.solver is not None:
            kw["solver"] = self.solver
        if self.umm is not None:
            kw["umm"] = self.umm
        if self.weighting is not None:
            kw["weighting"] = self.weighting
        return kw


def _lookup(kind: str, name: str, source: str, field: str) -> Entry:
    try:
        return registry.entry(kind, name)
    except UnknownNameError as exc:
        raise InputError(f"{source}: {field}: {exc}") from None


def _check_kwargs(
    factory: Callable[..., Any],
    kwargs: dict[str, Any],
    n_positional: int,
    source: str,
    section: str,
    label: str,
) -> None:
    """Check ``kwargs`` against the factory's signature (skipping ``n_positional`` leading
    parameters). A factory taking ``**kwargs`` accepts anything."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())[n_positional:]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        named = {
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        unknown = sorted(set(kwargs) - named)
        if unknown:
            raise InputError(
                f"{source}: {section}.{unknown[0]}: {label} does not take {unknown[0]!r} "
                f"(known: {', '.join(sorted(named)) or 'none'})"
            )
    for p in params:
        if (
            p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in kwargs
        ):
            raise InputError(f"{source}: {section}.{p.name}: required by {label}; add it")


def resolve_components(recipe: Recipe, source: str = "recipe") -> Components:
    """Look every component name of ``recipe`` up once and check the components' keyword
    arguments (this imports the components' modules)."""
    ds = _lookup("dataset", recipe.data.name, source, "data.name")
    bb = _lookup("backbone", recipe.model.name, source, "model.name")
    me = _lookup("method", recipe.method.name, source, "method.name")
    out = Components(ds, bb, me)
    if recipe.method.solver is not None and me.meta.get("alpha_solver", False):
        e = _lookup("solver", recipe.method.solver, source, "method.solver")
        out.solver = Backend.from_entry(e)
    wname = recipe.method.kwargs().get("weighting")
    if isinstance(wname, str) and me.meta.get("alpha_solver", False):
        out.weighting = _lookup("weighting", wname, source, "method.weighting").load()
    umm = recipe.method.umm
    if umm is not None:
        names = [umm] if isinstance(umm, str) else list(umm)
        found = [_lookup("umm", u, source, "method.umm").load() for u in names]
        out.umm = found[0] if isinstance(umm, str) else found
    _check_kwargs(ds.load(), dataset_kwargs(recipe), 0, source, "data", f"dataset {ds.name!r}")
    max_vocab(recipe, source)
    _check_kwargs(bb.load(), recipe.model.kwargs(), 1, source, "model", f"backbone {bb.name!r}")
    _check_kwargs(me.load(), recipe.method.kwargs(), 2, source, "method", f"method {me.name!r}")
    return out


def check_components(recipe: Recipe, source: str = "recipe") -> None:
    """Raise an :class:`~mtopt.errors.InputError` naming the file and field if a component
    name of ``recipe`` is unknown or a component does not take one of its options."""
    resolve_components(recipe, source)


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, override (``--set``), validate (:func:`mtopt.config.load_recipe`) and check the
    components of a recipe file: what ``mtopt train`` does before it touches the disk."""
    recipe = config.load_recipe(path, overrides)
    check_components(recipe, str(path))
    return recipe
