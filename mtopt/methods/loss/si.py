"""SI: the scale-invariant loss ``Σᵢ log Lᵢ``.

Baseline of Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022 (Sec. 6), and
of Liu et al., "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023.
"""

from __future__ import annotations

import torch

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.models.base import MultiTaskModel


class SI(LossWeightingMethod):
    """Scale-invariant loss ``Σᵢ log Lᵢ`` (the "SI" baseline of Navon et al., ICML 2022,
    Sec. 6, and Liu et al., FAMO, NeurIPS 2023): invariant to rescaling any task's loss, its
    gradient is ``Σ ∇Lᵢ / Lᵢ``. Losses are clamped at 1e-12 before the log.
    """

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, seed: int = 0) -> None:
        super().__init__(model, optimizer, seed=seed)

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, None]:
        return sum(torch.log(x.clamp_min(1e-12)) for x in ls), None  # type: ignore[return-value]


__all__ = ["SI"]
