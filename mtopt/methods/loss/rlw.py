"""RLW: random loss weighting.

Lin, Ye, Xu, Shi & Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test for
Multi-Task Learning", TMLR 2022. The pure aggregator form is
:class:`mtopt.methods.aggregators.rlw.RLW` (same draws).
"""

from __future__ import annotations

import torch

from mtopt.methods.aggregators.rlw import draw_rlw_weights
from mtopt.methods.base import OptimizerConfig
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.models.base import MultiTaskModel


class RLW(LossWeightingMethod):
    """Random loss weighting (Lin et al., TMLR 2022): ``Σ wᵢLᵢ``, ``w = softmax(N(0, I))``
    drawn afresh every step from the method's generator (``seed``). Weights on the simplex.
    """

    has_weights = True

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, seed: int = 0) -> None:
        super().__init__(model, optimizer, seed=seed)

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        w = draw_rlw_weights(self.n_tasks, self.generator).tolist()
        return sum(wi * li for wi, li in zip(w, ls)), w  # type: ignore[return-value]


__all__ = ["RLW"]
