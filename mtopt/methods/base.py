"""The method contract: how per-task losses become one optimisation step.

A method owns its optimiser(s). The trainer calls, per batch::

    info = method.step(losses)      # losses: list of n scalar tensors of the current batch

``step`` does the backward pass(es), sets gradients and steps the parameters. It returns a
:class:`StepInfo` with the task weights it used (for the α plot), the joint loss, and optional
solver data. Methods are registered by name (``registry.register("method", ...)``) as a class
taking ``(model, optimizer_config, **hyperparameters)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtopt.models.base import MultiTaskModel
from mtopt.optimizer_config import OptimizerConfig

__all__ = ["Method", "OptimizerConfig", "StepInfo", "make_torch_optimizer"]


@dataclass
class StepInfo:
    """What one step reports to the trainer (all plain Python numbers)."""

    loss: float
    task_losses: list[float]
    weights: list[float] | None = None
    solver_status: str | None = None
    solve_seconds: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def make_torch_optimizer(params: Sequence[Any], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """A plain torch optimiser (adam, adagrad, rmsprop, sgd) for ``params`` from ``cfg``."""
    name = cfg.name.lower()
    if name == "adam":
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **cfg.extra)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **cfg.extra)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **cfg.extra)
    from mtopt.errors import InputError

    raise InputError(
        f"optimizer.name: unknown optimizer {cfg.name!r} (known: adam, adagrad, rmsprop, sgd)"
    )


class Method:
    """Base class of multi-task optimisation methods (see the module docstring)."""

    #: per-step task weights are meaningful for this method (logged and plotted)
    has_weights: bool = False

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, **hp: Any) -> None:
        self.model = model
        self.optimizer_config = optimizer
        self.n_tasks = model.n_tasks

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit for bit (optimiser moments, method state, RNG)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
