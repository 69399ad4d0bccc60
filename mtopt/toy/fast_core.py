"""The toy fast path's shared arithmetic: batched analytic Jacobians and torch's float32
arithmetic written out in numpy (see :mod:`mtopt.toy.fast`).

* :func:`batch_grads`: :func:`mtopt.toy.problem.value_and_grad` vectorised over points;
* :func:`fma32`, :func:`sqrt32`, :func:`combine32`: how torch's CPU kernels round in float32
  (fused multiply-adds in ``lerp``/``addcmul``/``add(alpha=)``, torch's own float32 ``sqrt``,
  which is not always the correctly rounded one numpy gives, and ``c @ J`` / ``mv`` with each
  product rounded before the sum);
* :class:`Adam32`: torch's single-tensor CPU ``torch.optim.Adam`` (no weight decay) on a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mtopt.toy.problem import LOWER

F32 = np.float32


def _math(f: Callable[[float], float], a: np.ndarray) -> np.ndarray:
    """``f`` (a :mod:`math` function) on every entry: the libm bits the per-run path gets
    (numpy's own ``tanh`` differs from ``math.tanh`` in the last bit for ~20 % of inputs)."""
    return np.array(list(map(f, a.tolist())))


def batch_grads(X: np.ndarray, scale: float, values: bool = False) -> np.ndarray:
    """``[B, 2, 2]`` Jacobians (row i = ∇Lᵢ) at the points ``X`` ``[B, 2]``, float64.

    :func:`mtopt.toy.problem.value_and_grad` vectorised: the same operations in the same
    order, with ``math.tanh`` and ``math.log``, so the same float64 bits.
    ``values=True`` returns ``[B, 2, 3]``: the loss ``Lᵢ`` in column 2.
    """
    u, y = X[:, 0].astype(np.float64), X[:, 1].astype(np.float64)
    ty = _math(math.tanh, y)
    sech2 = 1.0 - ty * ty
    p1 = -0.5 * u - 3.5 + ty
    p2 = -0.5 * u + 3.5 - ty
    a1, a2 = np.abs(p1), np.abs(p2)
    h1 = _math(math.log, np.maximum(a1, LOWER)) + 6.0
    h2 = _math(math.log, np.maximum(a2, LOWER)) + 6.0
    with np.errstate(divide="ignore"):
        k1 = np.where((a1 >= LOWER) & (p1 != 0.0), 1.0 / p1, 0.0)
        k2 = np.where((a2 >= LOWER) & (p2 != 0.0), 1.0 / p2, 0.0)
    h1u, h1y = -0.5 * k1, sech2 * k1
    h2u, h2y = -0.5 * k2, -sech2 * k2
    th = _math(math.tanh, 0.5 * y)
    dth = 0.5 * (1.0 - th * th)
    pos = th >= 0.0
    neg = -th >= 0.0
    c1, c1y = np.where(pos, th, 0.0), np.where(pos, dth, 0.0)
    c2, c2y = np.where(neg, -th, 0.0), np.where(neg, -dth, 0.0)
    ry = 0.1 * (y + 8.0) ** 2
    q1 = ((u - 7.0) ** 2 + ry) / 10.0 - 20.0
    q2 = ((u + 7.0) ** 2 + ry) / 10.0 - 20.0
    qy = 0.02 * (y + 8.0)
    J = np.empty((X.shape[0], 2, 3 if values else 2))
    J[:, 0, 0] = scale * (h1u * c1 + 0.2 * (u - 7.0) * c2)
    J[:, 0, 1] = scale * (h1y * c1 + h1 * c1y + qy * c2 + q1 * c2y)
    J[:, 1, 0] = h2u * c1 + 0.2 * (u + 7.0) * c2
    J[:, 1, 1] = h2y * c1 + h2 * c1y + qy * c2 + q2 * c2y
    if values:
        J[:, 0, 2] = scale * (h1 * c1 + q1 * c2)
        J[:, 1, 2] = h2 * c1 + q2 * c2
    return J


def fma32(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 ``a·b + c`` with one rounding (the product is exact in float64)."""
    return (a.astype(np.float64) * b + c).astype(F32)


def sqrt32(v: np.ndarray) -> np.ndarray:
    """torch's float32 ``sqrt`` (not always the correctly rounded one that numpy gives)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(v)).sqrt().numpy()


def combine32(c: np.ndarray, J32: np.ndarray) -> np.ndarray:
    """``[B, d]`` float32 ``Σᵢ cᵢ Jᵢ`` for float32 ``c`` ``[B, 2]`` and ``J32`` ``[B, 2, d]``, as
    torch's float32 ``c @ J`` / ``mv(Jᵀ, c)`` does it: each product rounded, then the sum."""
    return c[:, 0:1] * J32[:, 0] + c[:, 1:2] * J32[:, 1]


class Adam32:
    """torch's single-tensor CPU Adam (float32, no weight decay, no amsgrad) on ``[B, k]``.

    ``lerp`` and ``addcmul`` as fused multiply-adds, bias corrections in float64, ``eps``
    outside the square root, torch's float32 ``sqrt``.
    """

    def __init__(self, shape: tuple[int, ...], lr: float, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8) -> None:  # fmt: skip
        self.m = np.zeros(shape, dtype=F32)
        self.v = np.zeros(shape, dtype=F32)
        self.t = 0
        self.lr, self.b1, self.b2 = float(lr), float(b1), float(b2)
        self._w1, self._w2, self._v1 = F32(1.0 - b1), F32(b2), F32(1.0 - b2)
        self._eps = F32(eps)

    def step(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The new ``x`` after one step on the float32 gradient ``g``."""
        self.m = fma32(self._w1, g - self.m, self.m)  # lerp(m, g, 1 − β₁)
        self.v = fma32(self._v1 * g, g, self.v * self._w2)  # v·β₂, then addcmul(g, g, 1 − β₂)
        self.t += 1
        step_size = self.lr / (1.0 - self.b1**self.t)
        bc2 = (1.0 - self.b2**self.t) ** 0.5
        denom = sqrt32(self.v) / F32(bc2) + self._eps
        return x + (F32(-step_size) * self.m) / denom
