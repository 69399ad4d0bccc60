"""IMTL-L: learned loss scales ``e^{sᵢ}`` that drive every scaled loss to 1.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
ICLR 2021, eq. 3. :func:`log_scale_group` is shared with hybrid IMTL
(:class:`mtopt.methods.grad.imtl.IMTL`).
"""

from __future__ import annotations

from typing import Any

import torch

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.checks import positive
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.methods.params import model_device
from mtopt.models.base import MultiTaskModel


def log_scale_group(model: Any, lr: float | None) -> tuple[Any, dict[str, Any]]:
    """Learned per-task log-scales ``s`` (init 0) and their optimiser param group (no weight
    decay; ``lr`` defaults to the base lr), as IMTL-L and hybrid IMTL use them."""
    scales = torch.zeros(model.n_tasks, requires_grad=True, device=model_device(model))
    group: dict[str, Any] = {"params": [scales], "weight_decay": 0.0}
    if lr is not None:
        group["lr"] = positive("lr", lr)
    return scales, group


class LogScaleState:
    """Checkpoint state of methods with learned per-task log-scales (IMTL-L, hybrid IMTL)."""

    log_scales: torch.Tensor

    def _extra_state(self) -> dict[str, Any]:
        return {"log_scales": self.log_scales.detach().clone()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_scales.copy_(state["log_scales"])


class IMTLL(LogScaleState, LossWeightingMethod):
    """IMTL-L (Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021, eq. 3): learned
    scales ``e^{sᵢ}`` with objective ``Σ e^{sᵢ}Lᵢ − sᵢ`` (optimum ``e^{sᵢ} = 1/Lᵢ``: every
    scaled loss → 1), all parameters and ``s`` (init 0, no weight decay; ``lr`` default the base
    lr) in one step. Weights: ``e^{sᵢ}``.
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        lr: float | None = None,
        seed: int = 0,
    ) -> None:
        self.log_scales, group = log_scale_group(model, lr)
        super().__init__(model, optimizer, seed=seed, extra_groups=[group])

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        scale = torch.exp(self.log_scales)
        obj = sum(scale[i] * ls[i] - self.log_scales[i] for i in range(self.n_tasks))
        return obj, scale.detach().cpu().tolist()  # type: ignore[return-value]


__all__ = ["IMTLL", "LogScaleState", "log_scale_group"]
