"""Nash-MTL: task weights from the bargaining solution ``Gα = 1/α``.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task Learning as a
Bargaining Game", ICML 2022, eq. 2. The α policy (schedule, Frobenius scaling, warm start,
keeping the previous α) is :class:`mtopt.optim.balance.Balance`, the one PUB uses (Yuan, Cai &
Dong, ICDM 2024, Algorithm 1 lines 12–14); the equation, scaling and clipping are
:mod:`mtopt.methods.aggregators.nashmtl`.
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
    """Nash-MTL (Navon et al., ICML 2022, eq. 2): ``Gα = 1/α`` through
    :class:`~mtopt.optim.balance.Balance`.

    Hyperparameters (authors' defaults): ``update_weights_every`` (alias ``solve_every``, the
    recipe's generic name; 1: re-solve α every step; in between, one backward of ``Σ αᵢLᵢ``
    with the last α), ``max_norm`` (1.0: the shared gradient is clipped to this norm),
    ``normalize`` (``frobenius``: solve on ``G/‖G‖_F``), ``solver`` (``newton``, resolved once)
    and ``tol`` / ``solver_options`` for the backend, ``seed``.

    The policy is Balance's (:attr:`balance`, ``fallback="previous"``):

    * schedule: α is solved at the first step and then every ``update_weights_every`` steps
      *after the last solve* (not at global step multiples), and at every step while there
      is no α yet;
    * warm start: the previous α is the backend's ``alpha0`` when its signature takes one;
    * a solve without status ``ok`` — no α (``pareto_stationary``) or an α whose certificate
      misses ``tol`` (``not_converged``, not trusted) — keeps the last α when there is one and
      otherwise skips the shared step (shared gradients cleared, so the optimiser leaves the
      shared parameters and their moments untouched; the task-specific parameters still
      step). Each such solve is counted in ``StepInfo.extra["fallbacks"]``;
    * α, the schedule position and the counters (``balance.counts``: solves, reuses,
      fallbacks, skipped) are checkpointed, so a resumed run is bitwise an uninterrupted one.

    Non-finite task gradients raise :class:`~mtopt.errors.InputError`, as in the other
    gradient methods.
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
        solver: Any = "newton",
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
        #: the α policy (Balance): schedule, warm start, keep the previous α, counters
        self.balance = self.aggregator.new_balance(  # type: ignore[attr-defined]
            every, fallback="previous", warm_start=True
        )

    @property
    def alpha(self) -> np.ndarray | None:
        """The α in use (the latest one solved with status ``ok``; None before)."""
        return self.balance.alpha

    @property
    def fallbacks(self) -> int:
        """Solves without status ``ok`` so far."""
        return self.balance.counts["fallbacks"]

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        self.aggregator.last_info = {}
        grads: dict[str, torch.Tensor] = {}

        def gram() -> np.ndarray:  # called by the balance only when a solve is due
            grads["J"], grads["T"] = self._jacobians(ls)
            return gram64(grads["J"])

        alpha, rec = self.balance.weights(gram)
        status = seconds = None
        if rec.solved:
            if rec.status == "nonfinite":
                raise InputError(
                    "grads: contains NaN or Inf; check the task losses for non-finite values"
                )
            self.aggregator.record(rec)  # type: ignore[attr-defined]
            status, seconds = rec.status, rec.solve_seconds
            J, T = grads["J"], grads["T"]
            set_flat_grad(self.shared, None if alpha is None else combine(alpha, J))
            set_flat_grad(self.others, T.sum(0))
        else:  # reuse α: one backward of Σ αᵢLᵢ
            assert alpha is not None
            weighted = sum(float(a) * li for a, li in zip(alpha, ls))
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
        extra["solved"] = float(rec.solved)
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, self.alpha, extra, solver_status=status, solve_seconds=seconds)

    def _extra_state(self) -> dict[str, Any]:
        return {"balance": self.balance.state_dict(), "counts": dict(self.balance.counts)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if "balance" in state:
            self.balance.load_state_dict(state["balance"])
            self.balance.counts = {k: int(v) for k, v in state["counts"].items()}
            return
        # the layout before Balance: {"alpha", "fallbacks"} with the schedule n_steps % every
        n, every = self.n_steps, self.update_weights_every
        self.balance.load_state_dict(_from_old_layout(state, n, every))
        self.balance.counts = _old_counts(state, n, every)


def _from_old_layout(state: dict[str, Any], n: int, every: int) -> dict[str, Any]:
    """Balance state from a checkpoint written before Balance (α, fallbacks; the schedule was
    ``n_steps % every == 0`` or no α yet).

    α is exact. The schedule position is exact when the first solve succeeded (the usual
    case): the last solve was at the last multiple of ``every`` below ``n``, so
    ``since_solve = (n − 1) % every + 1``; without an α the next step solves anyway.
    """
    a = state.get("alpha")
    since = every if (a is None or n < 1) else (n - 1) % every + 1
    return {"alpha": a, "since_solve": since, "last_residual": None}


def _old_counts(state: dict[str, Any], n: int, every: int) -> dict[str, int]:
    """The counters an old checkpoint did not keep, as the old schedule implies them (exact
    when no solve before the checkpoint failed; ``fallbacks`` is the one it kept)."""
    fallbacks = int(state.get("fallbacks", 0))
    if state.get("alpha") is None:  # every step solved and none gave an α
        return {"solves": n, "reuses": 0, "fallbacks": fallbacks, "skipped": fallbacks}
    solves = (n - 1) // every + 1 if n > 0 else 0
    return {"solves": solves, "reuses": n - solves, "fallbacks": fallbacks, "skipped": 0}


__all__ = ["NashMTL"]
