"""The shared loop of the loss-level methods: one backward of a (re)weighted objective, one step.

See :mod:`mtopt.methods.loss` for the contract (``StepInfo.loss`` / ``extra["objective"]`` /
``weights``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.methods.checks import check_losses, make_generator
from mtopt.methods.params import split_parameters
from mtopt.methods.stateful import StatefulStepMixin
from mtopt.models.base import MultiTaskModel


class LossWeightingMethod(StatefulStepMixin, Method):
    """Base class: one backward of :meth:`objective`, one base-optimiser step.

    Subclasses implement :meth:`objective` returning ``(objective, weights_or_None)`` and may
    override :meth:`after_step`. ``extra_params`` become an optimiser group without weight
    decay (``lr`` overridable per group).
    """

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        *,
        seed: int = 0,
        extra_groups: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__(model, optimizer)
        self.shared, self.others = split_parameters(model)
        self.generator = make_generator(seed)
        groups: list[dict[str, Any]] = [{"params": self.shared + self.others}]
        groups += [dict(g) for g in extra_groups]
        self.opt = make_torch_optimizer(groups, optimizer)
        self.n_steps = 0

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, Sequence[float] | None]:
        raise NotImplementedError

    def after_step(self, ls: list[torch.Tensor]) -> None:
        """Hook run after the optimiser step (method state updates)."""

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        """One backward of the objective and one optimiser step."""
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        obj, w = self.objective(ls)
        obj.backward()
        self.opt.step()
        self.after_step(ls)
        self.n_steps += 1
        return self._info(ls, w, {"objective": float(obj.detach())})


__all__ = ["LossWeightingMethod"]
