"""GradDrop: gradient sign dropout by sign purity.

Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, "Just Pick a Sign: Optimizing Deep
Multitask Models with Gradient Sign Dropout", NeurIPS 2020, eq. 1-2.
"""

from __future__ import annotations

from collections.abc import Sequence

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.grad.base import GradientMethod
from mtopt.models.base import MultiTaskModel


class GradDrop(GradientMethod):
    """GradDrop (Chen et al., NeurIPS 2020, eq. 1-2): sign dropout by gradient sign purity.

    Hyperparameters: ``leak`` (0.0), ``max_norm`` (0), ``seed``. See
    :mod:`mtopt.methods.aggregators.graddrop`.
    """

    aggregator_name = "graddrop"

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        leak: float | Sequence[float] = 0.0,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, leak=leak)


__all__ = ["GradDrop"]
