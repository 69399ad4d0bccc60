"""alpha solver backends for ``G a = 1/a, a > 0`` (PUB's eq. ``DᵀDα = 1/α``).

Solvers know nothing of torch: they take a float64 numpy ``G`` (n×n, symmetric PSD) and return a
:class:`~mtopt.solvers.base.SolveResult`. :func:`solve` takes a backend callable or a name;
:func:`get_solver` resolves a name once (from :mod:`mtopt.catalog`, no registry, no torch) for
callers that solve many times.
"""

from __future__ import annotations

from mtopt.solvers.backends import Backend, get_solver
from mtopt.solvers.base import (
    DEFAULT_TOL,
    STATUSES,
    SolveResult,
    residual,
    solve,
    validate_gram,
)

__all__ = [
    "DEFAULT_TOL",
    "STATUSES",
    "Backend",
    "SolveResult",
    "get_solver",
    "residual",
    "solve",
    "validate_gram",
]
