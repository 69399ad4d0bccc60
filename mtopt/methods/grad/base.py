"""The shared loop of the gradient-level methods (see :mod:`mtopt.methods.grad`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators import get_aggregator
from mtopt.methods.aggregators.base import Aggregator
from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.methods.checks import check_losses, make_generator, positive
from mtopt.methods.params import clip_, set_flat_grad, split_parameters, task_jacobians
from mtopt.methods.stateful import StatefulStepMixin, numeric_info
from mtopt.models.base import MultiTaskModel


class GradientMethod(StatefulStepMixin, Method):
    """Base class of the gradient-level methods (see :mod:`mtopt.methods.grad`).

    Subclasses set :attr:`aggregator_name` and pass the aggregator's hyperparameters to
    ``__init__``. Hyperparameters common to all: ``max_norm`` (clip the shared gradient norm,
    0 = off) and ``seed`` (the method's RNG).
    """

    aggregator_name: str = ""
    #: :attr:`~mtopt.methods.base.Method.grad_reducer` (set by :mod:`mtopt.distributed`)
    #: averages ``J`` and ``T`` over ranks in place right after the per-task backward passes,
    #: so the aggregator sees the global ``J``
    reduces_task_gradients = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        *,
        max_norm: float = 0.0,
        seed: int = 0,
        extra_params: Sequence[dict[str, Any]] = (),
        **aggregator_hp: Any,
    ) -> None:
        super().__init__(model, optimizer)
        self.shared, self.others = split_parameters(model)
        if not self.shared:
            raise InputError(
                f"method {self.aggregator_name}: the backbone declares no shared parameters"
            )
        self.aggregator: Aggregator = get_aggregator(self.aggregator_name, **aggregator_hp)
        self.max_norm = positive("max_norm", max_norm, allow_zero=True)
        self.generator = make_generator(seed)
        groups: list[dict[str, Any]] = [{"params": self.shared + self.others}]
        groups += list(extra_params)
        self.opt = make_torch_optimizer(groups, optimizer)
        self.n_steps = 0

    # -- one step ---------------------------------------------------------------------------
    def _jacobians(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`task_jacobians`, averaged over ranks by :attr:`grad_reducer` when set."""
        J, T = task_jacobians(ls, self.shared, self.others)
        if self.grad_reducer is not None:
            J, T = self.grad_reducer(J), self.grad_reducer(T)
        return J, T

    def _direction(
        self, J: torch.Tensor, losses: list[torch.Tensor]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(d, weights)`` for the Jacobian ``J`` (override for stateful methods)."""
        det = [float(x.detach()) for x in losses]
        return self.aggregator(J, generator=self.generator, losses=det)

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        """Per-task gradients, aggregation on the shared parameters, one optimiser step."""
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        J, T = self._jacobians(ls)
        d, w = self._direction(J, ls)
        set_flat_grad(self.shared, d)
        set_flat_grad(self.others, T.sum(0))
        return self._finish(ls, w)

    def _finish(self, ls: list[torch.Tensor], w: Any) -> StepInfo:
        """The end of every gradient-level step: clip the shared gradient (``max_norm``), one
        optimiser step, and the step's :class:`StepInfo`."""
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        extra = numeric_info(self.aggregator.last_info)
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, w, extra)


__all__ = ["GradientMethod"]
