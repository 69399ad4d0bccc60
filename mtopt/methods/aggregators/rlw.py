"""RLW: random loss weighting, fresh weights from a softmax of standard normals every step.

Lin, Ye, Xu, Shi & Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test for
Multi-Task Learning", TMLR 2022, Sec. 3 (the Normal-then-softmax distribution, their default)::

    w = softmax(z),   z ~ N(0, I_n),    d = Σ wᵢ gᵢ

``z`` is drawn as ``torch.randn(n, generator=g, dtype=torch.float64)``; the loss-level
:class:`mtopt.methods.loss.rlw.RLW` draws its weights the same way, so both give the same
direction for the same generator state.

Output scaling: ``Σ wᵢ gᵢ`` with ``w`` on the simplex (Σ w = 1).
"""

from __future__ import annotations

from typing import Any

import torch

from mtopt.methods.aggregators.base import Aggregator
from mtopt.methods.linalg import combine


def draw_rlw_weights(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """``softmax(z)``, ``z ~ N(0, I_n)`` drawn from ``generator`` (float64)."""
    z = torch.randn(n, generator=generator, dtype=torch.float64)
    return torch.softmax(z, dim=0)


class RLW(Aggregator):
    """RLW (Lin et al., TMLR 2022): ``Σ wᵢ gᵢ`` with ``w = softmax(N(0, I))``."""

    name = "rlw"
    stochastic = True
    has_weights = True

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w = draw_rlw_weights(J.shape[0], generator)
        return combine(w.numpy(), J), w.to(J.device)
