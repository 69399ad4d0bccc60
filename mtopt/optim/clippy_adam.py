"""ClippyAdam: Adam whose per-tensor update is bounded Clippy-style (baseline row of PUB's tables).

Clippy is from Tang et al., "Improving Training Stability for Multitask Ranking Models in
Recommender Systems", KDD 2023 (arXiv 2302.09178), there on top of AdaGrad; the PUB paper
(Yuan et al., ICDM 2024) uses it with Adam. The update ``r = lr·m̂/(√v̂ + eps)`` of
``torch.optim.Adam`` (moments updated first, bias-corrected, L2 weight decay added to the
gradient) is scaled per tensor by ``σ = min(1, min_j (λ_rel|w_j| + λ_abs)/|r_j|)``, so that
``|Δw_j| ≤ λ_rel·|w_j| + λ_abs`` for every coordinate. The moments are fed the unclipped gradient
(Clippy's default; its accumulator update is not clipped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.optim.umm import clippy_factor


class ClippyAdam(torch.optim.Optimizer):
    """Adam with Clippy's update bound (Tang et al., KDD 2023). A drop-in ``torch.optim``
    optimizer: ``loss.backward(); opt.step()``.

    Args:
        params: parameters or parameter groups.
        lr, betas, eps, weight_decay: as ``torch.optim.Adam``.
        lambda_rel, lambda_abs: Clippy's relative and absolute thresholds (defaults 0.5 and 1e-2,
            as in the PUB authors' ClippyAdam).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        lambda_rel: float = 0.5,
        lambda_abs: float = 1e-2,
    ) -> None:
        for name, v in (
            ("lr", lr),
            ("eps", eps),
            ("weight_decay", weight_decay),
            ("lambda_rel", lambda_rel),
            ("lambda_abs", lambda_abs),
        ):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"{name}: must be a finite number ≥ 0, got {v!r}")
        if not all(0.0 <= float(b) < 1.0 for b in betas):
            raise InputError(f"betas: each must be in [0, 1), got {betas!r}")
        defaults = dict(
            lr=lr,
            betas=tuple(float(b) for b in betas),
            eps=eps,
            weight_decay=weight_decay,
            lambda_rel=lambda_rel,
            lambda_abs=lambda_abs,
        )
        super().__init__(params, defaults)
        #: smallest clipping factor σ of the latest step (1.0: nothing clipped)
        self.last_min_factor: float = 1.0

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Adam step with Clippy scaling (``closure`` as in torch.optim)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        factors: list[torch.Tensor] = []
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                st = self.state[p]
                if not st:
                    st["step"] = torch.tensor(0.0)
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                t = float(st["step"])
                st["exp_avg"].lerp_(grad, 1.0 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
                bc1 = 1.0 - b1**t
                bc2_sqrt = math.sqrt(1.0 - b2**t)
                denom = (st["exp_avg_sq"].sqrt() / bc2_sqrt).add_(group["eps"])
                update = st["exp_avg"] / denom * (group["lr"] / bc1)
                f = clippy_factor(update, p, group["lambda_rel"], group["lambda_abs"])
                factors.append(f)
                p.sub_(update.mul_(f))
        if factors:
            self.last_min_factor = float(torch.stack(factors).min())
        return loss
