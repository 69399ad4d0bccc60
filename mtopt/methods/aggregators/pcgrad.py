"""PCGrad: project each task gradient off the normal planes of the gradients it conflicts with.

Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task Learning",
NeurIPS 2020, Algorithm 1 (eq. of line 6)::

    for each task i:  g̃ᵢ = gᵢ
        for j in a uniformly random order of {1..n} \\ {i}:
            if g̃ᵢ·gⱼ < 0:  g̃ᵢ ← g̃ᵢ − (g̃ᵢ·gⱼ / ‖gⱼ‖²) gⱼ
    d = Σᵢ g̃ᵢ

Projections are onto the *original* gⱼ (as in the paper and the authors' code). Every g̃ᵢ stays
in the span of the gᵢ, so we track its coefficients ``g̃ᵢ = Σₖ Cᵢₖ gₖ`` and need only the
float64 Gram ``G`` (``g̃ᵢ·gⱼ = (C G)ᵢⱼ``); the result is ``d = (Σᵢ Cᵢ) J``.

Order: for task ``i = 0, 1, …, n−1`` in turn we draw ``torch.randperm(n, generator=g)`` and drop
``i`` from it. With the same generator state the order (and the result) is reproducible.

Output scaling: ``reduction="sum"`` (default, the paper's ``Σ g̃ᵢ``; equals ``Σ gᵢ`` when no
pair conflicts, i.e. LS) or ``"mean"`` (÷ n).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator
from mtopt.methods.linalg import combine, gram64


def draw_orders(n: int, generator: torch.Generator | None) -> list[list[int]]:
    """The projection order of each task (see the module docstring)."""
    orders = []
    for i in range(n):
        perm = torch.randperm(n, generator=generator).tolist()
        orders.append([j for j in perm if j != i])
    return orders


def pcgrad_coefficients(G: np.ndarray, orders: list[list[int]]) -> np.ndarray:
    """Coefficient matrix ``C`` (row i: g̃ᵢ in the basis of the gₖ) for the given orders."""
    n = G.shape[0]
    C = np.eye(n)
    for i in range(n):
        for j in orders[i]:
            if G[j, j] <= 0:
                continue
            dot = float(C[i] @ G[:, j])
            if dot < 0:
                C[i, j] -= dot / G[j, j]
    return C


class PCGrad(Aggregator):
    """PCGrad (Yu et al., NeurIPS 2020, Algorithm 1); see the module docstring.

    Args:
        reduction: ``sum`` (default, paper) or ``mean``.
    """

    name = "pcgrad"
    stochastic = True

    def __init__(self, reduction: str = "sum") -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise InputError(f"method.reduction: must be 'sum' or 'mean', got {reduction!r}")
        self.reduction = reduction

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, None]:
        G = gram64(J)
        n = G.shape[0]
        orders = draw_orders(n, generator)
        C = pcgrad_coefficients(G, orders)
        c = C.sum(axis=0)
        if self.reduction == "mean":
            c = c / n
        self.last_info["conflicts"] = int(np.sum(np.triu(G, 1) < 0))
        return combine(c, J), None
