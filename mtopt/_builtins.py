"""Declarations of mtopt's built-in components (lazy ``module:attr`` targets).

Each line is the only place a built-in is named; adding a component = one file + one line here.
Third-party components register the same way through the ``mtopt.plugins`` entry points.
"""

from __future__ import annotations

from mtopt.registry import registry

_r = registry.register

# --- alpha solver backends: callables solve(G, *, tol, **options) -> SolveResult --------------
_r(
    "solver",
    "newton",
    "mtopt.solvers.newton:solve",
    "Exact damped Newton on f(a)=a'Ga/2-sum(log a), unit-diagonal scaling (default).",
)
