"""LS, linear scalarisation: minimise the (weighted) sum of task losses with the base optimiser."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.models.base import MultiTaskModel


class LS(Method):
    """Linear scalarisation ``L = Σᵢ wᵢ Lᵢ`` with fixed weights (default all 1).

    The "plain backbone" row of the PUB paper's Table III (Yuan et al., ICDM 2024).
    """

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__(model, optimizer)
        self.weights = [1.0] * self.n_tasks if weights is None else [float(w) for w in weights]
        if len(self.weights) != self.n_tasks:
            from mtopt.errors import InputError

            raise InputError(
                f"method.weights: expected {self.n_tasks} weights, got {len(self.weights)}"
            )
        self.opt = make_torch_optimizer(list(model.parameters()), optimizer)

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        self.opt.zero_grad(set_to_none=True)
        total = sum(w * loss for w, loss in zip(self.weights, losses))
        total.backward()
        self.opt.step()
        return StepInfo(
            loss=float(total.detach()),
            task_losses=[float(x.detach()) for x in losses],
            weights=list(self.weights),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict(), "weights": list(self.weights)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.weights = list(state["weights"])
