"""Registered α solver backends: callables ``solve(G, *, tol, **options) -> SolveResult``."""

from mtopt.registry import registry

registry.register(
    "solver",
    "newton",
    "mtopt.solvers.newton:solve",
    "Exact damped Newton on f(a)=a'Ga/2-sum(log a), unit-diagonal scaling (default).",
)
