"""The base-optimiser settings of a run: a plain dataclass, importable without torch.

:class:`OptimizerConfig` sits low in the import graph so that the recipe schema
(:mod:`mtopt.config`) can build one without importing :mod:`mtopt.methods` (and torch).
:mod:`mtopt.methods.base` re-exports it; methods turn it into a torch optimiser with
:func:`mtopt.methods.base.make_torch_optimizer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the base optimisers a recipe may name (PUB's base rules, plus plain SGD for the baselines)
OPTIMIZER_NAMES = ("adam", "adagrad", "rmsprop", "sgd")


@dataclass
class OptimizerConfig:
    """The base optimiser of a run (paper defaults: Adam, lr 1e-3, weight decay 1e-6)."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    extra: dict[str, Any] = field(default_factory=dict)


__all__ = ["OptimizerConfig"]
