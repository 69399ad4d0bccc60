"""GradDrop: keep, per coordinate, only the gradients of one sign, chosen by sign purity.

Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, "Just Pick a Sign: Optimizing Deep
Multitask Models with Gradient Sign Dropout", NeurIPS 2020, Algorithm 1 / eq. (1)-(2)::

    P = ½ (1 + Σᵢ gᵢ / Σᵢ |gᵢ|)                       (per coordinate, the positive sign purity)
    U ~ Uniform(0, 1)                                  (one draw per coordinate)
    Mᵢ = 1[P > U] · 1[gᵢ > 0] + 1[P < U] · 1[gᵢ < 0]
    d  = Σᵢ ((1 − ℓᵢ) Mᵢ + ℓᵢ) ⊙ gᵢ

with leak parameters ℓᵢ (0 for plain multi-task learning, the paper's setting; 1 lets task i's
gradient through unmasked). We apply it to the flattened gradients on the shared parameters
(the paper applies it to gradients at an activation layer, summed over the batch; on parameter
gradients the batch sum is already done). ``U`` is drawn with ``torch.rand(d, generator=g)``
(a CPU generator) in the dtype of the gradients, then moved to their device. A coordinate
with all-zero gradients has P = ½ (ε = 1e-8 in the denominator, as in the authors' and the
Nash-MTL/FAMO code) and contributes 0 either way.

Output scaling: the *sum* of the masked gradients (equal to ``Σ gᵢ`` where all tasks agree in
sign), which is also what the FAMO/Nash-MTL code produces (mean × n).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator

EPS = 1e-8


class GradDrop(Aggregator):
    """GradDrop (Chen et al., NeurIPS 2020, eq. 1-2); see the module docstring.

    Args:
        leak: one number or one per task in [0, 1] (default 0.0).
    """

    name = "graddrop"
    stochastic = True

    def __init__(self, leak: float | Sequence[float] = 0.0) -> None:
        super().__init__()
        vals = [float(leak)] if isinstance(leak, (int, float)) else [float(x) for x in leak]
        if not vals or any(not (0.0 <= v <= 1.0) for v in vals):
            raise InputError(f"method.leak: values must be in [0, 1], got {leak!r}")
        self.leak = vals

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, None]:
        n, d = J.shape
        if len(self.leak) not in (1, n):
            raise InputError(f"method.leak: expected 1 or {n} values, got {len(self.leak)}")
        P = 0.5 * (1.0 + J.sum(0) / (J.abs().sum(0) + EPS))
        U = torch.rand(d, generator=generator, dtype=J.dtype).to(J.device)
        M = ((P > U) & (J > 0)) | ((P < U) & (J < 0))
        leak = torch.tensor(self.leak, dtype=J.dtype, device=J.device).reshape(-1, 1)
        keep = (1.0 - leak) * M.to(J.dtype) + leak
        self.last_info["kept_fraction"] = float(M.to(torch.float64).mean())
        return (keep * J).sum(0), None
