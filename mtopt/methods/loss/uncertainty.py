"""Uncertainty weighting: learned homoscedastic log-variances per task.

Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
Geometry and Semantics", CVPR 2018, eq. 7 and 10.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig, StepInfo
from mtopt.methods.checks import positive
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.methods.params import model_device
from mtopt.models.base import MultiTaskModel


class Uncertainty(LossWeightingMethod):
    """Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), learned log-variances
    ``sᵢ = log σᵢ²`` trained jointly by the base optimiser (own group, no weight decay)::

        classification (eq. 10, default):  Σ e^{−sᵢ} Lᵢ + ½ sᵢ     (optimum e^{sᵢ} = 2Lᵢ)
        regression     (eq. 7):            Σ ½ e^{−sᵢ} Lᵢ + ½ sᵢ   (optimum e^{sᵢ} = Lᵢ)

    Both give the loss weight ``1/(2Lᵢ)`` at their optimum; the tasks here are binary
    classification, hence the eq. 10 default (the Nash-MTL / FAMO code uses the eq. 7 form).
    ``init`` = 0 (σ = 1). ``lr`` for the log-variances: default the base lr (the authors train
    σ jointly with the network; the Nash-MTL / FAMO code uses 0.025). Weights: the coefficient
    of ``Lᵢ`` (``e^{−sᵢ}`` or ``½e^{−sᵢ}``).
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        form: str = "classification",
        init: float = 0.0,
        lr: float | None = None,
        seed: int = 0,
    ) -> None:
        if form not in ("classification", "regression"):
            raise InputError(f"method.form: 'classification' or 'regression', got {form!r}")
        self.form = form
        self.log_vars = torch.full(
            (model.n_tasks,), float(init), requires_grad=True, device=model_device(model)
        )
        group: dict[str, Any] = {"params": [self.log_vars], "weight_decay": 0.0}
        if lr is not None:
            group["lr"] = positive("lr", lr)
        super().__init__(model, optimizer, seed=seed, extra_groups=[group])

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        c = 1.0 if self.form == "classification" else 0.5
        prec = torch.exp(-self.log_vars)
        obj = sum(c * prec[i] * ls[i] + 0.5 * self.log_vars[i] for i in range(self.n_tasks))
        return obj, (c * prec.detach()).cpu().tolist()  # type: ignore[return-value]

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        info = super().step(losses)
        info.extra.update({f"log_var_{i}": float(v) for i, v in enumerate(self.log_vars.detach())})
        return info

    def _extra_state(self) -> dict[str, Any]:
        return {"log_vars": self.log_vars.detach().clone()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_vars.copy_(state["log_vars"])


__all__ = ["Uncertainty"]
