"""Registered α solver backends: callables ``solve(G, *, tol, **options) -> SolveResult``.

Meta keys used by ``mtopt compare-solvers``: ``min_n`` / ``max_n`` (the task counts a backend
accepts; others are skipped and said so) and ``heavy`` (CVXPY-based: run on fewer instances).
"""

from mtopt.registry import registry

_PUB = "Yuan, Cai & Dong, ICDM 2024"

registry.register(
    "solver",
    "newton",
    "mtopt.solvers.newton:solve",
    "Exact damped Newton on f(a)=a'Ga/2-sum(log a), unit-diagonal scaling (default).",
)
registry.register(
    "solver",
    "ccp",
    "mtopt.solvers.ccp:solve",
    "PUB paper's CCP, eq. (3)-(4), CVXPY+ECOS, DPP, on the unit-diagonal G, warm-started.",
    _PUB,
    heavy=True,
)
registry.register(
    "solver",
    "ccp-raw",
    "mtopt.solvers.ccp:solve_raw",
    "The same CCP literally on the raw G, as the paper writes it (for comparison).",
    _PUB,
    heavy=True,
)
registry.register(
    "solver",
    "fixed-point",
    "mtopt.solvers.fixed_point:solve",
    "SciPy fixed point a <- sqrt(a/(Ga)) with a residual check; fails honestly on conflict.",
)
registry.register(
    "solver",
    "closed-form",
    "mtopt.solvers.closed_form:solve",
    "Exact two-task formula a_i = 1/(sqrt(G_ii) sqrt(1+cos)); n = 2 only.",
    min_n=2,
    max_n=2,
)
