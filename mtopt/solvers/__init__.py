"""alpha solver backends for ``G a = 1/a, a > 0`` (PUB's eq. ``DᵀDα = 1/α``).

Solvers know nothing of torch: they take a float64 numpy ``G`` (n×n, symmetric PSD) and return a
:class:`~mtopt.solvers.base.SolveResult`. Use :func:`solve` to dispatch by registered name.
"""

from __future__ import annotations

from mtopt.solvers.base import (
    DEFAULT_TOL,
    STATUSES,
    SolveResult,
    residual,
    solve,
    validate_gram,
)

__all__ = ["DEFAULT_TOL", "STATUSES", "SolveResult", "residual", "solve", "validate_gram"]
