"""Nash-MTL: the Nash bargaining solution, ``G α = 1/α`` on the task gradients.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task Learning as a
Bargaining Game", ICML 2022, eq. (1)-(2) / Claim 3.1: ``d = Σ αᵢ gᵢ`` with ``α > 0`` solving
``G α = 1/α``, ``G = J Jᵀ``. This is the same equation as PUB's (Yuan, Cai & Dong, ICDM 2024,
Claim 1; on updates instead of gradients), so α comes from the same balancing policy,
:class:`mtopt.optim.balance.Balance`, and a solver backend resolved once at construction
(:func:`mtopt.solvers.get_solver`, default ``newton``) that :func:`mtopt.solvers.solve` calls on
every solve with its input validation, certificate ``maxᵢ |αᵢ(Gα)ᵢ − 1|`` and status (``ok`` /
``not_converged`` / ``pareto_stationary``); the authors' CCP iterations (``optim_niter = 20``)
are replaced by a certified solve.

Normalisation (authors' code): α is solved on ``G / ‖G‖_F`` and applied to the raw gradients
(``normalize="frobenius"``, default; Balance's ``alpha_scale="frobenius"``). By the scaling law
α(G/s) = √s · α(G), so the returned ``d`` has ``‖d‖² = αᵀGα = n ‖G‖_F`` before clipping;
``normalize="none"`` solves on ``G`` itself (``alpha_scale="exact"``, ``‖d‖ = √n``).

Clipping (Nash-MTL's own rule, not the policy's): ``max_norm`` (authors' default 1.0; 0
disables) caps ‖d‖, as the authors' training code clips the shared gradient with
``clip_grad_norm_`` (:meth:`NashMTL.clip`).

The pure aggregator is stateless from call to call: its balance solves on every call, without
warm start, and a solve without status ``ok`` (Pareto-stationary input: 0 in the convex hull of
the gᵢ; or an α whose certificate misses ``tol``, which is not trusted) gives the zero vector and
``None`` weights with the status in :attr:`last_info`. The training method
(:class:`mtopt.methods.grad.nashmtl.NashMTL`) builds its own balance with
:meth:`NashMTL.new_balance` (schedule, warm start, keep the previous α; see there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator, as_weights
from mtopt.methods.linalg import combine, gram64
from mtopt.optim.balance import Balance, BalancePolicy, BalanceRecord, accepts_alpha0
from mtopt.solvers.backends import Backend, as_backend

#: ``normalize`` -> Balance's ``alpha_scale``
ALPHA_SCALE = {"frobenius": "frobenius", "none": "exact"}


class NashMTL(Aggregator):
    """Nash-MTL (Navon et al., ICML 2022, eq. 2) via :class:`~mtopt.optim.balance.Balance`.

    Args:
        normalize: ``frobenius`` (default, authors' code) or ``none``.
        max_norm: clip ‖d‖ to this value (default 1.0, authors' code; 0 disables).
        solver: α solver backend: a registered name (default ``newton``, resolved once here
            with :func:`mtopt.solvers.get_solver`; unknown names fail here), a resolved
            :class:`~mtopt.solvers.Backend` or a backend callable.
        tol: residual tolerance for status ``ok`` (default: the solvers' 1e-6).
        solver_options: extra keyword arguments for the backend.
    """

    name = "nashmtl"
    has_weights = True

    def __init__(
        self,
        normalize: str = "frobenius",
        max_norm: float = 1.0,
        solver: str | Backend | Callable[..., Any] = "newton",
        tol: float | None = None,
        solver_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if normalize not in ALPHA_SCALE:
            raise InputError(f"method.normalize: must be 'frobenius' or 'none', got {normalize!r}")
        if not (math.isfinite(float(max_norm)) and float(max_norm) >= 0):
            raise InputError(f"method.max_norm: must be a finite number ≥ 0, got {max_norm!r}")
        self.normalize = normalize
        self.max_norm = float(max_norm)
        self.backend = as_backend(solver)  # the one lookup; UnknownNameError lists the names
        self.solver = self.backend.name
        self.tol = tol
        self.solver_options = dict(solver_options or {})
        #: the pure aggregator's balance: a solve per call, no warm start, no previous α
        self.balance = self.new_balance()

    def new_balance(
        self, solve_every: int = 1, *, fallback: str = "skip", warm_start: bool = False
    ) -> Balance:
        """A :class:`~mtopt.optim.balance.Balance` with this aggregator's scale, solver and tol.

        ``warm_start=True`` passes the previous α as ``alpha0`` when the backend's signature
        accepts it (:func:`~mtopt.optim.balance.accepts_alpha0`).
        """
        policy = BalancePolicy(
            solve_every=solve_every,
            alpha_scale=ALPHA_SCALE[self.normalize],
            fallback=fallback,
            tol=self.tol,
        )
        return Balance(
            policy,
            solver=self.backend,
            warm_start=warm_start and accepts_alpha0(self.backend),
            solver_options=self.solver_options,
        )

    def record(self, rec: BalanceRecord) -> None:
        """:attr:`last_info` from what a balance did on a solve step."""
        self.last_info.update(
            {
                "status": rec.status,
                "residual": rec.residual,
                "iterations": rec.iterations,
                "solve_seconds": rec.solve_seconds,
                "normalization_factor": (
                    rec.gram_fro if self.normalize == "frobenius" and rec.gram_fro else 1.0
                ),
                "solver": self.solver,
            }
        )

    def clip(self, d: torch.Tensor) -> torch.Tensor:
        """Nash-MTL's max-norm rule: ``d`` scaled to ``max_norm`` when longer (0: off)."""
        self.last_info["clipped"] = False
        if self.max_norm > 0:
            norm = float(torch.linalg.vector_norm(d.to(torch.float64)))
            if norm > self.max_norm:
                d = d * (self.max_norm / (norm + 1e-6))
                self.last_info["clipped"] = True
        return d

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        alpha, rec = self.balance.weights(lambda: gram64(J))
        self.record(rec)
        if alpha is None:
            return torch.zeros(J.shape[1], dtype=J.dtype, device=J.device), None
        return self.clip(combine(alpha, J)), as_weights(alpha, J)
