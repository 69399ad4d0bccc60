"""IMTL-G and hybrid IMTL (IMTL-L loss scales + IMTL-G gradient weights).

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
ICLR 2021, eq. 7 (IMTL-G) and Algorithm 1 (hybrid).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mtopt.methods.aggregators.imtl import imtl_g_weights
from mtopt.methods.base import OptimizerConfig, StepInfo
from mtopt.methods.checks import check_losses
from mtopt.methods.grad.base import GradientMethod
from mtopt.methods.linalg import combine, gram64
from mtopt.methods.loss.imtl_l import LogScaleState, log_scale_group
from mtopt.methods.params import clip_, set_flat_grad
from mtopt.models.base import MultiTaskModel


class IMTLG(GradientMethod):
    """IMTL-G (Liu et al., ICLR 2021, eq. 7): equal projections on the unit task gradients.

    Computed on the shared-parameter gradients (the paper's cheaper variant uses the shared
    representation). Weights α with Σα = 1. See :mod:`mtopt.methods.aggregators.imtl`.
    """

    aggregator_name = "imtl_g"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed)


class IMTL(LogScaleState, GradientMethod):
    """Hybrid IMTL (Liu et al., ICLR 2021, Algorithm 1): IMTL-L loss scaling + IMTL-G.

    Each loss is scaled by a learned ``e^{sᵢ}`` (IMTL-L, eq. 3: minimise
    ``e^{sᵢ}Lᵢ − sᵢ`` in sᵢ, so ``e^{sᵢ} → 1/Lᵢ``); IMTL-G's α is computed on the gradients of
    the scaled losses ``L̃ᵢ = e^{sᵢ}Lᵢ`` on the shared parameters; shared parameters get
    ``Σ αᵢ ∇L̃ᵢ``, task-specific ones ``∇ Σ L̃ᵢ`` (the paper scales the towers' losses too), the
    scales ``sᵢ`` the gradient ``e^{sᵢ}Lᵢ − 1``; all in one base-optimiser step (s without weight
    decay, init 0, ``lr`` default the base lr). Reported weights: ``αᵢ e^{sᵢ}``, the coefficients
    of the raw ``∇Lᵢ``.
    """

    aggregator_name = "imtl_g"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        lr: float | None = None,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.log_scales, group = log_scale_group(model, lr)
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, extra_params=[group])

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        scale = torch.exp(self.log_scales.detach())
        scaled = [scale[i] * ls[i] for i in range(self.n_tasks)]
        J, T = self._jacobians(scaled)
        alpha = imtl_g_weights(gram64(J))
        set_flat_grad(self.shared, combine(alpha, J))
        set_flat_grad(self.others, T.sum(0))
        raw = torch.stack([x.detach().to(scale.device, scale.dtype) for x in ls])
        self.log_scales.grad = scale * raw - 1.0
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        w = alpha * scale.cpu().numpy().astype(np.float64)
        extra = {f"log_scale_{i}": float(v) for i, v in enumerate(self.log_scales.detach())}
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, w, extra)


__all__ = ["IMTL", "IMTLG"]
