"""Float64 linear-algebra primitives shared by the methods and the pure aggregators.

One copy each of the Gram matrix (:func:`gram64`: :func:`mtopt.optim.balance.gram64` in the
methods' summation order), the coefficient combination (:func:`combine`) and the cosine
(:func:`cos`) used inside :mod:`mtopt.methods`.
"""

from __future__ import annotations

import numpy as np
import torch

from mtopt.optim.balance import gram64 as _gram64

#: columns of J per block when accumulating the float64 Gram (bounds the fp64 copy to ~64 MiB)
GRAM_BLOCK = 1 << 20


def gram64(J: torch.Tensor) -> np.ndarray:
    """``G = J Jᵀ`` accumulated in float64, as a symmetric numpy array.

    :func:`mtopt.optim.balance.gram64` (the package's one Gram routine) in the methods'
    summation order: blocks of :data:`GRAM_BLOCK` columns, no broadcast path, symmetrised.
    Same bits as the methods' former own loop for ``d ≤ GRAM_BLOCK`` columns (one block); a
    wider fp32 ``J`` now accumulates block by block into ``G`` (``addmm_``) and a wider fp64
    ``J`` in one product, which can differ in the last bits.
    """
    return _gram64(J, GRAM_BLOCK, small=0, symmetrize=True)


def combine(coefficients: np.ndarray | torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """``Σᵢ cᵢ gᵢ`` in the dtype of ``J`` (coefficients computed in float64 by the caller)."""
    c = torch.as_tensor(np.asarray(coefficients, dtype=np.float64), device=J.device)
    if J.dtype == torch.float64:
        return c @ J
    return c.to(J.dtype) @ J


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of two flat vectors (in their dtype); 0 when either is zero."""
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(a @ b) / (na * nb)


__all__ = ["GRAM_BLOCK", "combine", "cos", "gram64"]
