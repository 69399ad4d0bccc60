"""Nash-MTL: task weights from the bargaining solution ``Gα = 1/α``.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task Learning as a
Bargaining Game", ICML 2022, eq. 2. The solve is :mod:`mtopt.methods.aggregators.nashmtl`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig, StepInfo
from mtopt.methods.checks import check_losses
from mtopt.methods.grad.base import GradientMethod
from mtopt.methods.linalg import combine, gram64
from mtopt.methods.params import clip_, set_flat_grad, set_grads
from mtopt.methods.stateful import numeric_info
from mtopt.models.base import MultiTaskModel


class NashMTL(GradientMethod):
    """Nash-MTL (Navon et al., ICML 2022, eq. 2): ``Gα = 1/α`` via :func:`mtopt.solvers.solve`.

    Hyperparameters (authors' defaults): ``update_weights_every`` (alias ``solve_every``, the
    recipe's generic name; 1: re-solve α every step; in between, one backward of ``Σ αᵢLᵢ``
    with the last α), ``max_norm`` (1.0: the shared gradient is clipped to this norm),
    ``normalize`` (``frobenius``: solve on ``G/‖G‖_F``), ``solver`` (``newton``) and ``tol`` /
    ``solver_options`` for the backend, ``seed``.

    No α (status ``pareto_stationary``, or a solve that returns none): the step keeps the last
    α when there is one and otherwise skips the shared step (shared gradients cleared, so the
    optimiser leaves the shared parameters and their moments untouched; the task-specific
    parameters still step). Each such step is counted in ``StepInfo.extra["fallbacks"]``.
    """

    aggregator_name = "nashmtl"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        update_weights_every: int = 1,
        max_norm: float = 1.0,
        normalize: str = "frobenius",
        solver: str = "newton",
        tol: float | None = None,
        solver_options: dict[str, Any] | None = None,
        seed: int = 0,
        solve_every: int | None = None,
    ) -> None:
        super().__init__(
            model,
            optimizer,
            max_norm=max_norm,
            seed=seed,
            normalize=normalize,
            solver=solver,
            tol=tol,
            solver_options=solver_options,
        )
        # the method clips the parameter gradients itself (same norm as the aggregator's d)
        self.aggregator.max_norm = 0.0
        if solve_every is not None:  # the recipe's generic name (as for PUB)
            if update_weights_every not in (1, solve_every):
                raise InputError(
                    "method.solve_every / method.update_weights_every: give one of them "
                    f"(got {solve_every!r} and {update_weights_every!r})"
                )
            update_weights_every = solve_every
        try:
            every = int(update_weights_every)
        except (TypeError, ValueError):
            every = 0
        if every < 1:
            raise InputError(
                f"method.update_weights_every: must be an integer ≥ 1, got {update_weights_every!r}"
            )
        self.update_weights_every = every
        self.alpha: np.ndarray | None = None
        self.fallbacks = 0

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        solve_now = self.alpha is None or self.n_steps % self.update_weights_every == 0
        status = None
        seconds = None
        self.aggregator.last_info = {}
        if solve_now:
            J, T = self._jacobians(ls)
            alpha = self.aggregator.solve_gram(gram64(J), alpha0=self.alpha)  # type: ignore[attr-defined]
            status = self.aggregator.last_info.get("status")
            seconds = self.aggregator.last_info.get("solve_seconds")
            if alpha is None:
                self.fallbacks += 1
            else:
                self.alpha = alpha
            set_flat_grad(self.shared, None if self.alpha is None else combine(self.alpha, J))
            set_flat_grad(self.others, T.sum(0))
        else:
            assert self.alpha is not None
            weighted = sum(float(a) * li for a, li in zip(self.alpha, ls))
            set_grads(
                self.shared,
                torch.autograd.grad(weighted, self.shared, retain_graph=True, allow_unused=True),
            )
            if self.others:
                set_grads(self.others, torch.autograd.grad(sum(ls), self.others, allow_unused=True))
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        extra = numeric_info(self.aggregator.last_info)
        extra["fallbacks"] = float(self.fallbacks)
        extra["solved"] = float(solve_now)
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, self.alpha, extra, solver_status=status, solve_seconds=seconds)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "alpha": None if self.alpha is None else [float(a) for a in self.alpha],
            "fallbacks": self.fallbacks,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        a = state.get("alpha")
        self.alpha = None if a is None else np.asarray(a, dtype=np.float64)
        self.fallbacks = int(state.get("fallbacks", 0))


__all__ = ["NashMTL"]
