"""FAMO: adaptive task weights from the per-step log-loss decrease.

Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023,
Algorithm 1. Uses the optional ``needs_closure`` hook of :class:`~mtopt.methods.base.Method`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from mtopt.errors import InputError, RunError
from mtopt.methods.base import OptimizerConfig, StepInfo
from mtopt.methods.checks import check_losses, positive
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.methods.params import clip_
from mtopt.models.base import MultiTaskModel


class FAMO(LossWeightingMethod):
    """FAMO (Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization",
    NeurIPS 2023, Algorithm 1).

    Task logits ξ (init 0), ``z = softmax(ξ)``. The network steps on
    ``Σᵢ zᵢ log(Lᵢ − bᵢ + ε) / c``, ``c = Σ zᵢ/(Lᵢ − bᵢ + ε)`` (detached), i.e. on the gradient
    ``Σ (zᵢ/Lᵢ)/c · ∇Lᵢ``, with the shared gradient clipped to ``max_norm`` (authors' code:
    1.0; 0 disables); ``bᵢ`` = 0 (the authors' ``min_losses``), ε = 1e-8. After the step the
    losses are evaluated again on the same batch (``closure``) and
    ``δᵢ = log(Lᵢ(θ_t) − bᵢ + ε) − log(Lᵢ(θ_{t+1}) − bᵢ + ε)``; ξ takes an Adam step (lr
    ``w_lr`` = 0.025, weight decay ``gamma`` = 0.01, the authors' defaults) on the gradient
    ``J_softmax(ξ)ᵀ δ = z ⊙ (δ − zᵀδ)``.

    Contract extension: ``needs_closure = True`` and ``step(losses, closure=None)``, see
    :class:`~mtopt.methods.base.Method`. Without a closure, ξ is updated at the *next* step
    from that step's losses (a different batch), which conflates the loss change with batch
    noise; StepInfo reports ``extra["closure"] = 0`` then. Weights: ``z`` (the paper's task
    weights; the effective coefficients of the raw ``∇Lᵢ`` are ``(zᵢ/Lᵢ)/c``, also on the
    simplex).
    """

    has_weights = True
    needs_closure = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        gamma: float = 0.01,
        w_lr: float = 0.025,
        max_norm: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, seed=seed)
        self.gamma = positive("gamma", gamma, allow_zero=True)
        self.w_lr = positive("w_lr", w_lr)
        self.max_norm = positive("max_norm", max_norm, allow_zero=True)
        self.logits = torch.zeros(self.n_tasks, requires_grad=True)
        self.w_opt = torch.optim.Adam([self.logits], lr=self.w_lr, weight_decay=self.gamma)
        self.min_losses = torch.zeros(self.n_tasks, dtype=torch.float64)
        self.prev_losses: torch.Tensor | None = None  # pending losses (no-closure fallback)
        self.eps = 1e-8

    def _log_d(self, vals: torch.Tensor) -> torch.Tensor:
        return torch.log(vals.to(torch.float64) - self.min_losses + self.eps)

    def _update_logits(self, before: torch.Tensor, after: torch.Tensor) -> None:
        delta = self._log_d(before) - self._log_d(after)
        z = torch.softmax(self.logits.detach().to(torch.float64), dim=0)
        grad = z * (delta - (z * delta).sum())
        self.w_opt.zero_grad(set_to_none=True)
        self.logits.grad = grad.to(self.logits.dtype)
        self.w_opt.step()

    def step(
        self,
        losses: Sequence[torch.Tensor],
        closure: Callable[[], Sequence[torch.Tensor]] | None = None,
    ) -> StepInfo:
        """One FAMO step; ``closure()`` must return the task losses of the same batch."""
        ls = check_losses(losses, self.n_tasks)
        vals = torch.tensor([float(x.detach()) for x in ls], dtype=torch.float64)
        if closure is None and self.prev_losses is not None:
            self._update_logits(self.prev_losses, vals)
        z = torch.softmax(self.logits.detach(), dim=0)
        L = torch.stack(ls)
        D = L - self.min_losses.to(L.device, L.dtype) + self.eps
        zd = z.to(L.device, L.dtype)
        c = (zd / D).sum().detach()
        obj = (torch.log(D) * zd / c).sum()
        self.opt.zero_grad(set_to_none=True)
        obj.backward()
        clip_(self.shared, self.max_norm)
        self.opt.step()
        if closure is not None:
            with torch.no_grad():
                new = [x.detach() for x in closure()]
            if len(new) != self.n_tasks:
                raise InputError(
                    f"FAMO closure returned {len(new)} losses, expected {self.n_tasks}"
                )
            new_vals = torch.tensor([float(x) for x in new], dtype=torch.float64)
            if not bool(torch.isfinite(new_vals).all()):
                raise RunError("FAMO: non-finite loss after the step; lower the learning rate")
            self._update_logits(vals, new_vals)
            self.prev_losses = None
        else:
            self.prev_losses = vals
        self.n_steps += 1
        extra = {"objective": float(obj.detach()), "closure": float(closure is not None)}
        return self._info(ls, z.tolist(), extra)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "logits": self.logits.detach().clone(),
            "w_opt": self.w_opt.state_dict(),
            "prev_losses": None if self.prev_losses is None else self.prev_losses.clone(),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.w_opt.load_state_dict(state["w_opt"])
        p = state.get("prev_losses")
        self.prev_losses = None if p is None else torch.as_tensor(p, dtype=torch.float64)


__all__ = ["FAMO"]
