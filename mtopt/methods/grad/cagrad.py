"""CAGrad: the best worst-task decrease in a ball around the mean gradient.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021, eq. 3 (via its dual).
"""

from __future__ import annotations

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.grad.base import GradientMethod
from mtopt.models.base import MultiTaskModel


class CAGrad(GradientMethod):
    """CAGrad (Liu et al., NeurIPS 2021, eq. 3 via its dual), ``c = 0.4``, ``rescale = 1``.

    Output ``n·d*/(1 + c²)`` (authors' code); see :mod:`mtopt.methods.aggregators.cagrad`.
    """

    aggregator_name = "cagrad"

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        c: float = 0.4,
        rescale: int = 1,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, c=c, rescale=rescale)


__all__ = ["CAGrad"]
