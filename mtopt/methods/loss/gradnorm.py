"""GradNorm: learned loss weights that equalise the tasks' scaled gradient norms.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss
Balancing in Deep Multitask Networks", ICML 2018, Algorithm 1, eq. 1-2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.methods.checks import check_losses, positive
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.methods.params import set_flat_grad, task_jacobians
from mtopt.models.base import MultiTaskModel


class GradNorm(LossWeightingMethod):
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, Algorithm 1, eq. 1-2).

    Learned loss weights ``wᵢ`` (init 1): the network minimises ``Σ wᵢLᵢ``; the weights
    minimise ``L_grad = Σᵢ |G_W⁽ⁱ⁾ − Ḡ_W · rᵢ^α|`` with ``G_W⁽ⁱ⁾ = wᵢ ‖∇_W Lᵢ‖``,
    ``Ḡ_W`` their mean, ``rᵢ = L̃ᵢ / mean(L̃)``, ``L̃ᵢ = Lᵢ(t)/Lᵢ(0)``; the target ``Ḡ_W rᵢ^α``
    is held constant, so ``∂L_grad/∂wᵢ = ‖∇_W Lᵢ‖ · sign(G_W⁽ⁱ⁾ − target)``. After each step
    the weights are renormalised to ``Σ wᵢ = n`` (kept ≥ 1e-6).

    ``W`` (paper: "generally the last shared layer"): ``on="shared"`` (default) uses all
    shared parameters, which needs no knowledge of the layer structure; ``on="representation"``
    uses the gradient on ``model.representation`` (cheaper). ``alpha`` = 1.5 (the paper's
    NYUv2 value, also LibMTL's default). ``weight_lr``: learning rate of the weights' own
    optimiser (same rule as the base optimiser, no weight decay); default the base lr.
    Weights: ``w``.
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        alpha: float = 1.5,
        on: str = "shared",
        weight_lr: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, seed=seed)
        self.alpha = positive("alpha", alpha, allow_zero=True)
        if on not in ("shared", "representation"):
            raise InputError(f"method.on: 'shared' or 'representation', got {on!r}")
        self.on = on
        self.weights = torch.ones(self.n_tasks, requires_grad=True)
        wcfg = dataclasses.replace(
            optimizer,
            lr=optimizer.lr if weight_lr is None else positive("weight_lr", weight_lr),
            weight_decay=0.0,
        )
        self.w_opt = make_torch_optimizer([self.weights], wcfg)
        self.initial_losses: list[float] | None = None

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        vals = [float(x.detach()) for x in ls]
        if self.initial_losses is None:
            self.initial_losses = [max(v, 1e-12) for v in vals]
        w = self.weights.detach().clone()
        self.opt.zero_grad(set_to_none=True)
        if self.on == "shared":
            J, T = task_jacobians(ls, self.shared, self.others)
            norms = torch.linalg.vector_norm(J.to(torch.float64), dim=1).cpu()
            set_flat_grad(self.shared, w.to(J.device, J.dtype) @ J)
            set_flat_grad(self.others, w.to(T.device, T.dtype) @ T)
        else:
            rep = getattr(self.model, "representation", None)
            if not isinstance(rep, torch.Tensor) or not rep.requires_grad:
                raise InputError(
                    "method gradnorm: on='representation' needs model.representation; "
                    "use on='shared'"
                )
            norms = torch.stack(
                [
                    torch.linalg.vector_norm(
                        torch.autograd.grad(li, rep, retain_graph=True)[0].to(torch.float64)
                    ).cpu()
                    for li in ls
                ]
            )
            sum(wi * li for wi, li in zip(w.tolist(), ls)).backward()
        self.opt.step()
        # weight update (Algorithm 1 of the paper)
        gw = w.to(torch.float64) * norms
        ratio = torch.tensor(vals, dtype=torch.float64) / torch.tensor(
            self.initial_losses, dtype=torch.float64
        )
        r = ratio / ratio.mean()
        target = gw.mean() * r**self.alpha
        grad_w = norms * torch.sign(gw - target)
        self.w_opt.zero_grad(set_to_none=True)
        self.weights.grad = grad_w.to(self.weights.dtype)
        self.w_opt.step()
        with torch.no_grad():
            self.weights.clamp_(min=1e-6)
            self.weights.mul_(self.n_tasks / self.weights.sum())
        self.n_steps += 1
        extra = {
            "objective": float(sum(wi * v for wi, v in zip(w.tolist(), vals))),
            "grad_loss": float((gw - target).abs().sum()),
        }
        return self._info(ls, w.tolist(), extra)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "weights": self.weights.detach().clone(),
            "w_opt": self.w_opt.state_dict(),
            "initial_losses": self.initial_losses,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.weights.copy_(state["weights"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.initial_losses = state["initial_losses"]


__all__ = ["GradNorm"]
