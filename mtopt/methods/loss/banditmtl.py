"""BanditMTL: task-variance regularisation as an adversarial bandit (mirror ascent on a KL ball).

Mao, Wang, Liu, Lin & Hu, "BanditMTL: Bandit-based Multi-task Learning for Text
Classification", ACL-IJCNLP 2021.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mtopt.methods.base import OptimizerConfig
from mtopt.methods.checks import positive
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.models.base import MultiTaskModel


def kl_to_uniform(p: np.ndarray) -> float:
    """``KL(p ‖ uniform) = Σ pᵢ log(n pᵢ)`` (0 log 0 = 0)."""
    n = p.size
    nz = p > 0
    return float(np.sum(p[nz] * np.log(n * p[nz])))


def bandit_mirror_step(
    p: np.ndarray, losses: np.ndarray, eta: float, rho: float
) -> tuple[np.ndarray, float]:
    """BanditMTL's task-weight update: one entropic mirror-ascent step on the KL ball.

    Solves ``max_{p' ∈ Δ, KL(p'‖u) ≤ ρ} η⟨p', L⟩ − KL(p' ‖ p)``. Its KKT conditions give
    ``p' ∝ (p · e^{ηL})^{1/(1+λ)}`` with ``λ ≥ 0`` the multiplier of the ball constraint:
    ``λ = 0`` if the unconstrained step is inside the ball, else the unique λ with
    ``KL(p'‖u) = ρ`` (KL of the tempered distribution grows monotonically with the exponent
    ``t = 1/(1+λ)``; bisection on t). Returns ``(p', λ)``.
    """
    logq = np.log(np.maximum(p, 1e-300)) + eta * losses

    def tempered(t: float) -> np.ndarray:
        x = t * logq
        e = np.exp(x - x.max())
        return e / e.sum()

    p1 = tempered(1.0)
    if kl_to_uniform(p1) <= rho:
        return p1, 0.0
    lo, hi = 0.0, 1.0  # KL(tempered(lo)) ≤ ρ < KL(tempered(hi))
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if kl_to_uniform(tempered(mid)) <= rho:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return tempered(lo), (1.0 / lo - 1.0) if lo > 0 else math.inf


class BanditMTL(LossWeightingMethod):
    """BanditMTL (Mao, Wang, Liu, Lin & Hu, ACL-IJCNLP 2021): task-variance regularisation as
    an adversarial bandit, ``min_θ max_{p ∈ Δ, KL(p‖u) ≤ ρ} Σ pᵢLᵢ(θ)``, by mirror gradient
    ascent-descent: the network steps on ``Σ pᵢLᵢ``; then ``p`` takes one entropic
    mirror-ascent step with step size ``eta_p`` on the KL ball of radius ``rho`` around the
    uniform distribution (:func:`bandit_mirror_step`, closed form up to one scalar). ``p``
    starts uniform. Defaults ``rho = 1.2``, ``eta_p = 0.5`` (the paper's text is not in our
    library; these are the values of a public re-implementation, see docs/methods.md). With
    ``n`` tasks the ball only binds when ``rho < log n`` (log 2 ≈ 0.69 for two tasks).
    Weights: ``p`` (on the simplex).
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        rho: float = 1.2,
        eta_p: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, seed=seed)
        self.rho = positive("rho", rho, allow_zero=True)
        self.eta_p = positive("eta_p", eta_p, allow_zero=True)
        self.p = np.full(self.n_tasks, 1.0 / self.n_tasks)
        self.last_lambda = 0.0

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        w = self.p.tolist()
        return sum(wi * li for wi, li in zip(w, ls)), w  # type: ignore[return-value]

    def after_step(self, ls: list[torch.Tensor]) -> None:
        vals = np.asarray([float(x.detach()) for x in ls])
        self.p, self.last_lambda = bandit_mirror_step(self.p, vals, self.eta_p, self.rho)

    def _extra_state(self) -> dict[str, Any]:
        return {"p": self.p.tolist()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.p = np.asarray(state["p"], dtype=np.float64)


__all__ = ["BanditMTL", "bandit_mirror_step", "kl_to_uniform"]
