"""The toy fast path of FAMO (:class:`mtopt.methods.loss.famo.FAMO`, the toy's settings).

The per-run path calls ``FAMO.step`` without a closure on the linearised losses: at each step
the logits ξ first take their update from the previous and the current loss values,

    δ = log(L_prev − b + ε) − log(L − b + ε),   ∇ξ = z ⊙ (δ − zᵀδ),   z = softmax(ξ) (float64),

with ``torch.optim.Adam`` (lr ``w_lr``, no weight decay); then ``x`` steps on the gradient of
``Σᵢ zᵢ log(Lᵢ − bᵢ + ε)/c``, ``c = Σ zᵢ/(Lᵢ − bᵢ + ε)`` (float32), clipped to ``max_norm``
(``clip_grad_norm_``) and fed to ``torch.optim.Adam``. Here the same arithmetic runs on a batch:
autograd's chain of that objective written out (``wᵢ = ((1/c)·zᵢ)/Dᵢ``, then ``mv(Jᵀ, w)``), the
clip as ``clip_grad_norm_`` computes it (the norm by torch, ``coef = 1/(norm + 1e-6)`` capped at
1), Adam from :mod:`mtopt.toy.fast_core`; ``log``, ``softmax`` and the norm are torch's own
kernels called on the whole batch (they give each row the bits they give it alone: tested).
Trajectories and final weights equal the per-run path's bit for bit (tests/toy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtopt.toy.fast_balance import LeaveFastPath
from mtopt.toy.fast_core import F32, Adam32, combine32


class FamoBatch:
    """FAMO (``gamma``, ``w_lr``, ``max_norm``, lower bounds ``min_losses``) on a batch."""

    uses_adam = True

    def __init__(self, B: int, *, w_lr: float, max_norm: float, min_losses: tuple[float, float],
                 gamma: float = 0.0, eps: float = 1e-8) -> None:  # fmt: skip
        if gamma != 0.0:
            raise ValueError("the fast FAMO has no logit weight decay (the toy's gamma = 0)")
        self.max_norm = float(max_norm)
        self.min64 = np.asarray(min_losses, dtype=np.float64)
        self.min32 = self.min64.astype(F32)
        self.eps = float(eps)
        self.logits = np.zeros((B, 2), dtype=F32)
        self.w_adam = Adam32((B, 2), w_lr)
        self.prev: np.ndarray | None = None
        self.z: np.ndarray | None = None

    def _update_logits(self, before: np.ndarray, after: np.ndarray) -> None:
        import torch

        lb = torch.log(torch.from_numpy((before - self.min64) + self.eps))
        la = torch.log(torch.from_numpy((after - self.min64) + self.eps))
        delta = (lb - la).numpy()
        z = torch.softmax(torch.from_numpy(self.logits.astype(np.float64)), dim=1).numpy()
        zd = z * delta
        grad = z * (delta - (zd[:, 0] + zd[:, 1])[:, None])
        self.logits = self.w_adam.step(self.logits, grad.astype(F32))

    def direction(self, J32: np.ndarray, L: np.ndarray) -> np.ndarray:
        """``[B, 2]`` float32 clipped gradient handed to ``torch.optim.Adam``; ``L`` the
        float32 loss values (the surrogate losses' values)."""
        import torch

        if not np.isfinite(L).all():
            raise LeaveFastPath("non-finite loss")
        vals = L.astype(np.float64)
        if self.prev is not None:
            self._update_logits(self.prev, vals)
        z = torch.softmax(torch.from_numpy(self.logits), dim=1).numpy()
        D = (L - self.min32) + F32(self.eps)
        q = z / D
        c = q[:, 0] + q[:, 1]
        w = ((F32(1.0) / c)[:, None] * z) / D  # Div-, Mul-, LogBackward of Σ log(D)·z/c
        g = combine32(w, J32)  # MvBackward: mv(Jᵀ, w)
        if self.max_norm > 0:
            norm = torch.linalg.vector_norm(torch.from_numpy(g), dim=1).numpy()
            # max_norm / (norm + 1e-6) is reciprocal(norm + 1e-6) · max_norm, then clamp(max=1)
            coef = np.minimum((F32(1.0) / (norm + F32(1e-6))) * F32(self.max_norm), F32(1.0))
            g = g * coef[:, None]
        if not np.isfinite(g).all():
            raise LeaveFastPath("non-finite gradient")
        self.prev = vals
        self.z = z
        return g

    def stats(self) -> list[dict[str, Any]]:
        if self.z is None:
            return [{"final_weights": None} for _ in range(self.logits.shape[0])]
        return [{"final_weights": [float(a) for a in zb]} for zb in self.z]
