"""The method contract: how per-task losses become one optimisation step.

A method owns its optimiser(s). The trainer calls, per batch::

    info = method.step(losses)      # losses: list of n scalar tensors of the current batch

``step`` does the backward pass(es), sets gradients and steps the parameters. It returns a
:class:`StepInfo` with the task weights it used (for the α plot), the joint loss, and optional
solver data. A method is a class taking ``(model, optimizer_config, **hyperparameters)``; the
built-ins are rows of :mod:`mtopt.catalog`, a plugin registers its own
(``registry.register("method", ...)``), and the composition root (:mod:`mtopt.train.build`)
resolves the recipe's name and passes objects (an α solver backend, UMM factories) down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtopt.models.base import MultiTaskModel
from mtopt.optimizer_config import OPTIMIZER_NAMES, OptimizerConfig

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
        f"optimizer.name: unknown optimizer {cfg.name!r} (known: {', '.join(OPTIMIZER_NAMES)})"
    )


class Method:
    """Base class of multi-task optimisation methods (see the module docstring).

    Required: :meth:`step`, :meth:`state_dict`, :meth:`load_state_dict`.

    Optional hooks, declared here with their defaults so that callers (trainer, sweep,
    distributed) can use plain attribute access instead of probing with ``getattr``:

    * :attr:`has_weights` (``False``): ``StepInfo.weights`` are meaningful (logged, plotted).
    * :attr:`needs_closure` (``False``): the method evaluates the task losses again after its
      step, on the same batch (FAMO). The trainer then calls
      ``step(losses, closure=fn)`` where ``fn()`` recomputes and returns the n task losses of
      the current batch with the updated parameters; methods without it are called
      ``step(losses)``.
    * :meth:`end_epoch` (no-op): called at the end of every training epoch (DWA with
      ``window=None`` averages its losses per epoch).
    * :attr:`grad_reducer` (``None``): multi-process hook set by :mod:`mtopt.distributed`;
      a method that sets :attr:`reduces_task_gradients` calls it on its per-task gradients
      right after the backward passes (averaged over ranks, in place).
    * :attr:`reduces_task_gradients` (``False``): the method calls :attr:`grad_reducer` itself
      (the gradient-level methods); otherwise its optimiser's gradients are averaged.
    * :attr:`single_process_only` (``False``): the method reads each process's own gradients
      before they could be averaged (DRGrad's router), so it cannot run on several processes.
    * :attr:`opt` (``None``): the method's optimiser (a torch optimiser, or an
      :mod:`mtopt.optim` multi-task optimiser carrying its own ``grad_reducer``), if it has one.
    """

    #: per-step task weights are meaningful for this method (logged and plotted)
    has_weights: bool = False
    #: call ``step(losses, closure=fn)``; ``fn()`` re-evaluates the batch's task losses
    needs_closure: bool = False
    #: set by :func:`mtopt.distributed.attach`: averages a tensor over ranks (in place)
    grad_reducer: Callable[[torch.Tensor], torch.Tensor] | None = None
    #: the method calls :attr:`grad_reducer` on its per-task gradients itself
    reduces_task_gradients: bool = False
    #: the method cannot be trained with several processes
    single_process_only: bool = False
    #: the method's optimiser, if any (torch optimiser or :mod:`mtopt.optim` optimiser)
    opt: Any = None

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, **hp: Any) -> None:
        self.model = model
        self.optimizer_config = optimizer
        self.n_tasks = model.n_tasks

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        """One optimisation step on the task losses of the current batch (see the module
        docstring; methods with :attr:`needs_closure` also take ``closure=``)."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Hook called at the end of each training epoch; no-op unless a method needs it."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit for bit (optimiser moments, method state, RNG)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
