"""Solver names -> backend callables, without the registry on the common path.

:func:`get_solver` resolves a name once, so a caller (an optimizer at construction, a benchmark
before its loop) can pass the returned :class:`Backend` to :func:`mtopt.solvers.solve` on every
step without any name lookup. Built-in names are resolved from :mod:`mtopt.catalog`'s solver
rows, which imports only the backend module itself (numpy; CVXPY for ``ccp``): no torch and no
mtopt.optim / methods / models / data module.

Names that are not in the catalog (``mtopt.plugins`` entry points, or solvers registered at run
time with ``registry.register("solver", ...)``) are looked up in :mod:`mtopt.registry`, which is
imported only then (it imports no component module either). Once the registry is loaded it is
asked first, so a plugin that overrides a built-in name is honoured as ``mtopt list`` shows it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtopt import catalog
from mtopt.errors import InputError, UnknownNameError
from mtopt.names import normalize

__all__ = ["Backend", "as_backend", "get_solver", "solver_names"]


@dataclass(frozen=True)
class Backend:
    """A resolved solver backend: call it as ``backend(G, *, tol, **options)``.

    ``name`` is the registered display name (it goes into ``SolveResult.solver``); ``meta``
    holds the catalog capabilities (``min_n``, ``max_n``, ``heavy``, ...). ``named`` is False
    for a bare callable wrapped by :func:`as_backend` (its ``SolveResult.solver`` is kept).
    """

    name: str
    fn: Callable[..., Any]
    meta: Mapping[str, Any] = field(default_factory=dict)
    named: bool = True

    def __call__(self, G: Any, **kwargs: Any) -> Any:
        return self.fn(G, **kwargs)


_ROWS: dict[str, catalog.Row] | None = None


def _rows() -> dict[str, catalog.Row]:
    global _ROWS
    if _ROWS is None:
        _ROWS = {normalize(r.name): r for r in catalog.rows("solver")}
    return _ROWS


def _load(target: str) -> Callable[..., Any]:
    """Import ``"module:attr"`` (attribute read at every call, so a patched module is seen)."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _from_registry(name: str) -> Backend:
    from mtopt.registry import registry  # only for names the catalog does not know

    entry = registry.entry("solver", name)  # UnknownNameError lists every known name
    return Backend(entry.name, entry.load(), dict(entry.meta))


def get_solver(name: str) -> Backend:
    """The backend registered as ``name`` (matched like every registered name).

    Raises :class:`~mtopt.errors.UnknownNameError` listing the known names.
    """
    if not isinstance(name, str):
        raise UnknownNameError(f"solver: expected a solver name, got {type(name).__name__}")
    if "mtopt.registry" in sys.modules:  # already loaded by someone: it is the whole truth
        return _from_registry(name)
    row = _rows().get(normalize(name))
    if row is None:
        return _from_registry(name)
    return Backend(row.name, _load(row.target), dict(row.capabilities))


def solver_names() -> list[str]:
    """Built-in solver names from the catalog (plugins: ``registry.names("solver")``)."""
    return sorted(r.name for r in _rows().values())


def as_backend(solver: Any) -> Backend:
    """``solver`` (a name, a :class:`Backend` or any backend callable) as a :class:`Backend`."""
    if isinstance(solver, Backend):
        return solver
    if isinstance(solver, str):
        return get_solver(solver)
    if callable(solver):
        name = getattr(solver, "__name__", type(solver).__name__)
        return Backend(name, solver, named=False)
    raise InputError(f"solver: expected a solver name or callable, got {type(solver).__name__}")
