"""Seeded scenarios of the solver benchmark: update matrices ``D`` and ``G = DᵀD``.

Scenarios (slugs), each a ``D`` (d × n, one column per task) with ``G = DᵀD`` in float64:

* ``random``: i.i.d. Gaussian columns.
* ``correlated``: a shared component, pairwise cosines around 0.3–0.9.
* ``conflicting``: disjoint pairs of columns with cosine in (−0.95, −0.55); for n ≥ 3 the
  other pairs are random (PSD forbids every pair having cos < −½, DESIGN §2.5).
* ``ill-conditioned``: random columns rescaled to norms spanning 1e-4 … 1e4.
* ``near-duplicate``: one column is another plus a relative perturbation of 1e-8 … 1e-4.
* ``opposite`` (degenerate): one column is exactly −c times another, so 0 is in the convex hull
  of the columns and no α exists; the correct outcome is ``pareto_stationary``.
"""

from __future__ import annotations

import math

import numpy as np

from mtopt.errors import InputError

SCENARIOS = (
    "random",
    "correlated",
    "conflicting",
    "ill-conditioned",
    "near-duplicate",
    "opposite",
)
DEGENERATE = frozenset({"opposite"})


def _rows_of(n: int) -> int:
    return max(4 * n, 32)


def make_updates(scenario: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """One seeded update matrix ``D`` (d × n) of ``scenario``."""
    d = _rows_of(n)
    D = rng.standard_normal((d, n))
    if scenario == "random":
        pass
    elif scenario == "correlated":
        rho = rng.uniform(0.55, 0.95)
        z = rng.standard_normal((d, 1))
        D = rho * z + math.sqrt(1 - rho**2) * D
    elif scenario == "conflicting":
        for i in range(0, n - 1, 2):
            target = rng.uniform(-0.95, -0.55)
            a = D[:, i] / np.linalg.norm(D[:, i])
            e = D[:, i + 1] - (D[:, i + 1] @ a) * a
            e /= np.linalg.norm(e)
            D[:, i + 1] = target * a + math.sqrt(1 - target**2) * e
    elif scenario == "ill-conditioned":
        exps = rng.uniform(-4.0, 4.0, size=n)
        exps[0], exps[-1] = -4.0, 4.0
        D = D * 10.0**exps
    elif scenario == "near-duplicate":
        if n >= 2:
            eps = 10.0 ** rng.uniform(-8.0, -4.0)
            noise = rng.standard_normal(d)
            D[:, 1] = D[:, 0] + eps * np.linalg.norm(D[:, 0]) * noise / np.linalg.norm(noise)
    elif scenario == "opposite":
        if n >= 2:
            D[:, 1] = -rng.uniform(0.1, 10.0) * D[:, 0]
    else:
        raise InputError(
            f"scenarios: unknown scenario {scenario!r}; pick from {', '.join(SCENARIOS)}"
        )
    return D


def make_gram(scenario: str, n: int, seed: int, instance: int) -> np.ndarray:
    """The seeded ``G = DᵀD`` (float64) for one (scenario, n, instance)."""
    if scenario not in SCENARIOS:
        raise InputError(
            f"scenarios: unknown scenario {scenario!r}; pick from {', '.join(SCENARIOS)}"
        )
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario), n, instance])
    D = make_updates(scenario, n, rng)
    return D.T @ D


def expected_status(scenario: str) -> str:
    """The correct outcome for a scenario."""
    return "pareto_stationary" if scenario in DEGENERATE else "ok"
