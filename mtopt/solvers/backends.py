"""Solver names -> backend callables, resolved once, without the registry.

:func:`get_solver` resolves a *built-in* name once, so a caller (an optimizer at construction, a
benchmark before its loop) can pass the returned :class:`Backend` to
:func:`mtopt.solvers.solve` on every step without any name lookup. Built-in names are resolved
from :mod:`mtopt.catalog`'s solver rows, which imports only the backend module itself (numpy;
CVXPY for ``ccp``): no torch and no mtopt.optim / methods / models / data module.

Plugin solvers (``mtopt.plugins`` entry points, or ``registry.register("solver", ...)`` at run
time) are resolved by the composition roots that own names — ``mtopt train`` / ``sweep`` /
``solve`` / ``compare-solvers`` through :mod:`mtopt.registry` — and handed down as a
:class:`Backend`. In your own code pass the callable (or ``registry.get("solver", name)``) where
a solver is expected: every consumer accepts a name, a :class:`Backend` or a callable.
"""

from __future__ import annotations

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

    @classmethod
    def from_entry(cls, entry: Any) -> Backend:
        """The backend of a registry entry (``name``, ``load()``, ``meta``): how the composition
        roots hand a plugin solver down."""
        return cls(entry.name, entry.load(), dict(entry.meta))


_ROWS: dict[str, catalog.Row] | None = None


def _rows() -> dict[str, catalog.Row]:
    global _ROWS
    if _ROWS is None:
        _ROWS = {normalize(r.name): r for r in catalog.rows("solver")}
    return _ROWS


def get_solver(name: str) -> Backend:
    """The built-in backend named ``name`` (matched like every registered name).

    Raises :class:`~mtopt.errors.UnknownNameError` listing the built-in names; a plugin solver
    is not resolved here (see the module docstring).
    """
    if not isinstance(name, str):
        raise UnknownNameError(f"solver: expected a solver name, got {type(name).__name__}")
    row = _rows().get(normalize(name))
    if row is None:
        raise UnknownNameError(
            f"solver: {name!r} is not a built-in solver (built-in: {', '.join(solver_names())}); "
            "for a plugin solver pass the function itself, e.g. "
            f"mtopt.registry.registry.get('solver', {name!r})"
        )
    return Backend(row.name, catalog.load(row.target), dict(row.capabilities))


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
