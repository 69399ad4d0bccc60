"""The Nash bargaining weighting: ``Gα = 1/α`` through a registered solver backend.

Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, eq. (2) on gradients;
Yuan, Cai & Dong, ICDM 2024, Claim 1 (``DᵀDα = 1/α``) on updates. The solve is
:func:`mtopt.solvers.solve` with a backend (``newton`` by default); the residual is the
backends' certificate ``maxᵢ |αᵢ(Gα)ᵢ − 1|``.

PUB's default ``weighting="nash"`` does **not** go through this class: it keeps
:class:`mtopt.optim.balance.Balance`'s own solver path (warm start, backend options), so its
result is bit for bit the one before weightings existed. This class is the same equation for
callers that want a :class:`~mtopt.weightings.base.Weighting` (per-group balancing, tests).

Scale: ``αᵀGα = n`` at the solution, so ``‖Dα‖ = √n`` on the G it saw (PUB: ``G/‖G‖_F``).
Not scale invariant: ``G → cG`` gives ``α → α/√c``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtopt.weightings.base import Weighting, WeightingResult


class Nash(Weighting):
    """``Gα = 1/α`` (Navon et al., ICML 2022, eq. 2) with a solver backend (name or object)."""

    name = "nash"
    scale_invariant = False

    def __init__(self, solver: Any = "newton", tol: float | None = None, **options: Any) -> None:
        from mtopt.solvers.backends import as_backend
        from mtopt.solvers.base import DEFAULT_TOL

        self.backend = as_backend(solver)
        self.tol = DEFAULT_TOL if tol is None else float(tol)
        self.options = options

    def weights(self, G: np.ndarray) -> WeightingResult:
        from mtopt.solvers import solve

        res = solve(G, solver=self.backend, tol=self.tol, validate="light", **self.options)
        alpha = None if res.alpha is None else np.asarray(res.alpha, dtype=np.float64)
        return WeightingResult(alpha, status=res.status, residual=res.residual,
                               iterations=res.iterations)  # fmt: skip


__all__ = ["Nash"]
