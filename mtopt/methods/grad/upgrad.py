"""UPGrad, Aligned-MTL and FairGrad: gradient-level methods from a Gramian weighting.

* UPGrad — Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024, Sec. 3
  and Prop. 1 (:mod:`mtopt.weightings.upgrad`);
* Aligned-MTL — Senushkin et al., "Independent Component Alignment for Multi-Task Learning",
  CVPR 2023, Algorithm 1 (:mod:`mtopt.weightings.aligned_mtl`);
* FairGrad — Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, Sec. 4
  (:mod:`mtopt.weightings.fairgrad`).

Each is the shared gradient loop (:class:`~mtopt.methods.grad.base.GradientMethod`) with the
aggregator ``Σ αᵢgᵢ``, ``α = weighting(JJᵀ)`` (:mod:`mtopt.methods.aggregators.weighting`).
The same weightings act on PUB's updates with ``pub[weighting=...]``.
"""

from __future__ import annotations

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.grad.base import GradientMethod
from mtopt.models.base import MultiTaskModel


class UPGrad(GradientMethod):
    """UPGrad (Quinton & Rey 2024, Sec. 3, Prop. 1): the mean of the task gradients projected
    onto the dual cone of all of them (a non-conflicting direction)."""

    aggregator_name = "upgrad"
    has_weights = True

    def __init__(
        self, model: MultiTaskModel, optimizer: OptimizerConfig, reg_eps: float = 1e-4,
        max_norm: float = 0.0, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, reg_eps=reg_eps)


class AlignedMTL(GradientMethod):
    """Aligned-MTL (Senushkin et al., CVPR 2023, Algorithm 1): the gradient system aligned to
    condition number 1, summed with uniform preferences 1/n."""

    aggregator_name = "aligned_mtl"
    has_weights = True

    def __init__(
        self, model: MultiTaskModel, optimizer: OptimizerConfig, max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed)


class FairGrad(GradientMethod):
    """FairGrad (Ban & Ji, ICML 2024, Sec. 4): α-fair weights ``(Gw)ᵢ = wᵢ^{−1/a}``
    (``fair_alpha`` = a, default 2.0; a = 1 is Nash-MTL's equation)."""

    aggregator_name = "fairgrad"
    has_weights = True

    def __init__(
        self, model: MultiTaskModel, optimizer: OptimizerConfig, fair_alpha: float = 2.0,
        max_norm: float = 0.0, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, fair_alpha=fair_alpha)


__all__ = ["AlignedMTL", "FairGrad", "UPGrad"]
