"""Aggregators that are a :mod:`mtopt.weightings` weighting followed by ``Σ αᵢ gᵢ``.

torchjd's split in its plainest form: ``G = JJᵀ`` in float64, ``α = weighting(G)``, the output
``Σ αᵢ gᵢ`` (:func:`~mtopt.methods.linalg.combine`). Used for the weightings that came with
per-update balancing — UPGrad (Quinton & Rey 2024), Aligned-MTL (Senushkin et al., CVPR 2023)
and FairGrad (Ban & Ji, ICML 2024); each class's weighting cites its paper's equation.

When a weighting has no α for a ``G`` (FairGrad's equation without a positive solution) the
previous call's α is reused, or the mean ``1/n`` on the first call; ``last_info["fallback"]``
is 1 then.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtopt.methods.aggregators.base import Aggregator, as_weights
from mtopt.methods.linalg import combine, gram64
from mtopt.weightings import Weighting
from mtopt.weightings.aligned_mtl import AlignedMTL as _AlignedMTLW
from mtopt.weightings.fairgrad import FairGrad as _FairGradW
from mtopt.weightings.upgrad import UPGrad as _UPGradW


class WeightingAggregator(Aggregator):
    """``Σ αᵢ gᵢ`` with ``α = weighting(JJᵀ)``; returns ``(vector, α)``."""

    has_weights = True

    def __init__(self, weighting: Weighting) -> None:
        super().__init__()
        self.weighting = weighting
        self._previous: np.ndarray | None = None

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        res = self.weighting(gram64(J))
        alpha = res.alpha
        self.last_info["fallback"] = 0 if res.ok else 1
        if not res.ok or alpha is None:
            n = J.shape[0]
            alpha = self._previous if self._previous is not None else np.full(n, 1.0 / n)
        self._previous = alpha
        if res.residual is not None:
            self.last_info["weighting_residual"] = float(res.residual)
        return combine(alpha, J), as_weights(alpha, J)


class UPGrad(WeightingAggregator):
    """UPGrad (Quinton & Rey 2024, Sec. 3, Prop. 1): mean of the projections of the rows onto
    their dual cone; α ≥ 1/n."""

    name = "upgrad"

    def __init__(self, reg_eps: float = 1e-4) -> None:
        super().__init__(_UPGradW(reg_eps))


class AlignedMTL(WeightingAggregator):
    """Aligned-MTL (Senushkin et al., CVPR 2023, Algorithm 1): α = B·(1/n), condition number 1."""

    name = "aligned_mtl"

    def __init__(self) -> None:
        super().__init__(_AlignedMTLW())


class FairGrad(WeightingAggregator):
    """FairGrad (Ban & Ji, ICML 2024, Sec. 4): ``(Gw)ᵢ = wᵢ^{−1/a}``, ``fair_alpha`` = a."""

    name = "fairgrad"

    def __init__(self, fair_alpha: float = 2.0) -> None:
        super().__init__(_FairGradW(fair_alpha))


__all__ = ["AlignedMTL", "FairGrad", "UPGrad", "WeightingAggregator"]
