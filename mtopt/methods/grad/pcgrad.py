"""PCGrad: project conflicting gradients onto each other's normal planes.

Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task Learning",
NeurIPS 2020, Algorithm 1.
"""

from __future__ import annotations

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.grad.base import GradientMethod
from mtopt.models.base import MultiTaskModel


class PCGrad(GradientMethod):
    """PCGrad (Yu et al., NeurIPS 2020, Algorithm 1): gradient surgery on conflicting pairs.

    Hyperparameters: ``reduction`` (``sum`` default | ``mean``), ``max_norm`` (0), ``seed``
    (the projection order). See :mod:`mtopt.methods.aggregators.pcgrad`.
    """

    aggregator_name = "pcgrad"

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        reduction: str = "sum",
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, reduction=reduction)


__all__ = ["PCGrad"]
