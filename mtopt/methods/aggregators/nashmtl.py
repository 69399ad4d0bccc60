"""Nash-MTL: the Nash bargaining solution, ``G α = 1/α`` on the task gradients.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task Learning as a
Bargaining Game", ICML 2022, eq. (1)-(2) / Claim 3.1: ``d = Σ αᵢ gᵢ`` with ``α > 0`` solving
``G α = 1/α``, ``G = J Jᵀ``. This is the same equation as PUB's (on updates instead of
gradients), so we solve it with the registered solver backends (:func:`mtopt.solvers.solve`,
default ``newton``), inheriting their input validation, certificate ``maxᵢ |αᵢ(Gα)ᵢ − 1|`` and
status (``ok`` / ``not_converged`` / ``pareto_stationary``); the authors' CCP iterations
(``optim_niter = 20``) are replaced by an exact solve.

Normalisation (authors' code): α is solved on ``G / ‖G‖_F`` and applied to the raw gradients
(``normalize="frobenius"``, default). By the scaling law α(G/s) = √s · α(G), so the returned
``d`` has ``‖d‖² = αᵀGα = n ‖G‖_F`` before clipping; ``normalize="none"`` solves on ``G``
itself (``‖d‖ = √n``).

Clipping: ``max_norm`` (authors' default 1.0; 0 disables) caps ‖d‖, as the authors' training
code clips the shared gradient with ``clip_grad_norm_``.

Pareto-stationary input (0 in the convex hull of the gᵢ, where no α exists) and any solve
without an α: the pure aggregator returns the zero vector and ``None`` weights with the status
in :attr:`last_info`; the training method (:class:`mtopt.methods.grad.nashmtl.NashMTL`) keeps its
previous α instead when it has one (see there).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator, as_weights
from mtopt.methods.linalg import combine, gram64


class NashMTL(Aggregator):
    """Nash-MTL (Navon et al., ICML 2022, eq. 2) via :func:`mtopt.solvers.solve`.

    Args:
        normalize: ``frobenius`` (default, authors' code) or ``none``.
        max_norm: clip ‖d‖ to this value (default 1.0, authors' code; 0 disables).
        solver: registered α solver backend (default ``newton``).
        tol: residual tolerance for status ``ok`` (default: the solvers' 1e-6).
        solver_options: extra keyword arguments for the backend.
    """

    name = "nashmtl"
    has_weights = True

    def __init__(
        self,
        normalize: str = "frobenius",
        max_norm: float = 1.0,
        solver: str = "newton",
        tol: float | None = None,
        solver_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if normalize not in ("frobenius", "none"):
            raise InputError(f"method.normalize: must be 'frobenius' or 'none', got {normalize!r}")
        if not (math.isfinite(float(max_norm)) and float(max_norm) >= 0):
            raise InputError(f"method.max_norm: must be a finite number ≥ 0, got {max_norm!r}")
        from mtopt.registry import registry

        registry.entry("solver", solver)  # unknown names fail here, listing the known ones
        self.normalize = normalize
        self.max_norm = float(max_norm)
        self.solver = solver
        self.tol = tol
        self.solver_options = dict(solver_options or {})

    def solve_gram(self, G: np.ndarray, alpha0: np.ndarray | None = None) -> np.ndarray | None:
        """α for the (raw) Gram ``G``: solved on the normalised G, valid for the raw gradients.

        Returns ``None`` when the solver gives no α (status in ``last_info``).
        """
        from mtopt.solvers.base import DEFAULT_TOL, solve

        fro = float(np.linalg.norm(G)) if self.normalize == "frobenius" else 1.0
        if not fro > 0:
            self.last_info.update({"status": "pareto_stationary", "residual": None})
            return None
        opts = dict(self.solver_options)
        if alpha0 is not None and self.solver == "newton" and "alpha0" not in opts:
            opts["alpha0"] = np.asarray(alpha0, dtype=np.float64)
        res = solve(G / fro, solver=self.solver, tol=self.tol or DEFAULT_TOL, **opts)
        self.last_info.update(
            {
                "status": res.status,
                "residual": res.residual,
                "iterations": res.iterations,
                "solve_seconds": res.seconds,
                "normalization_factor": fro,
                "solver": res.solver,
            }
        )
        self.last_result = res
        return None if res.alpha is None else np.asarray(res.alpha, dtype=np.float64)

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        alpha = self.solve_gram(gram64(J))
        if alpha is None:
            return torch.zeros(J.shape[1], dtype=J.dtype, device=J.device), None
        d = combine(alpha, J)
        self.last_info["clipped"] = False
        if self.max_norm > 0:
            norm = float(torch.linalg.vector_norm(d.to(torch.float64)))
            if norm > self.max_norm:
                d = d * (self.max_norm / (norm + 1e-6))
                self.last_info["clipped"] = True
        return d, as_weights(alpha, J)
