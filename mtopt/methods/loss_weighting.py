"""Loss-level baselines: each step minimises a (re)weighted combination of the task losses.

One backward of the method's objective, one step of the base optimiser
(:func:`~mtopt.methods.base.make_torch_optimizer`) on all model parameters plus the method's
own learned parameters (log-variances, loss scales) as an extra parameter group without weight
decay. ``StepInfo.loss`` is ``Σᵢ Lᵢ`` (unweighted, comparable across methods); the objective
actually minimised is ``StepInfo.extra["objective"]``; ``StepInfo.weights`` are the task weights
where the method's paper defines them (the coefficient of ``Lᵢ`` in the objective, or FAMO's
``z``).

Optional hooks beyond the :class:`~mtopt.methods.base.Method` contract (the trainer may call
them; both are no-ops / unused where a method does not need them):

* ``needs_closure`` (class attribute) and ``step(losses, closure=None)``: FAMO evaluates the
  task losses again *after* its step, on the same batch. A trainer that sees
  ``method.needs_closure`` should call ``method.step(losses, closure=fn)`` where ``fn()``
  recomputes and returns the n task losses of the current batch with the current (updated)
  parameters; FAMO calls it under ``torch.no_grad()``. Without a closure FAMO falls back to the
  next step's losses (documented in :class:`FAMO`).
* ``end_epoch()``: DWA with ``window=None`` (the paper's per-epoch loss averages) needs to know
  where epochs end. Methods that do not use it do not define it.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError, RunError
from mtopt.methods._common import (
    StatefulStepMixin,
    check_losses,
    clip_,
    log_scale_group,
    make_generator,
    model_device,
    positive,
    set_flat_grad,
    split_parameters,
    task_jacobians,
)
from mtopt.methods.aggregators.rlw import draw_rlw_weights
from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.models.base import MultiTaskModel


class LossWeightingMethod(StatefulStepMixin, Method):
    """Base class: one backward of :meth:`objective`, one base-optimiser step.

    Subclasses implement :meth:`objective` returning ``(objective, weights_or_None)`` and may
    override :meth:`after_step`. ``extra_params`` become an optimiser group without weight
    decay (``lr`` overridable per group).
    """

    needs_closure: bool = False

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        *,
        seed: int = 0,
        extra_groups: Sequence[dict[str, Any]] = (),
    ) -> None:
        super().__init__(model, optimizer)
        self.shared, self.others = split_parameters(model)
        self.generator = make_generator(seed)
        groups: list[dict[str, Any]] = [{"params": self.shared + self.others}]
        groups += [dict(g) for g in extra_groups]
        self.opt = make_torch_optimizer(groups, optimizer)
        self.n_steps = 0

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, Sequence[float] | None]:
        raise NotImplementedError

    def after_step(self, ls: list[torch.Tensor]) -> None:
        """Hook run after the optimiser step (method state updates)."""

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        """One backward of the objective and one optimiser step."""
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        obj, w = self.objective(ls)
        obj.backward()
        self.opt.step()
        self.after_step(ls)
        self.n_steps += 1
        return self._info(ls, w, {"objective": float(obj.detach())})


# ---------------------------------------------------------------------------------------------
class SI(LossWeightingMethod):
    """Scale-invariant loss ``Σᵢ log Lᵢ`` (the "SI" baseline of Navon et al., ICML 2022,
    Sec. 6, and Liu et al., FAMO, NeurIPS 2023): invariant to rescaling any task's loss, its
    gradient is ``Σ ∇Lᵢ / Lᵢ``. Losses are clamped at 1e-12 before the log.
    """

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, seed: int = 0) -> None:
        super().__init__(model, optimizer, seed=seed)

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, None]:
        return sum(torch.log(x.clamp_min(1e-12)) for x in ls), None  # type: ignore[return-value]


class RLW(LossWeightingMethod):
    """Random loss weighting (Lin et al., TMLR 2022): ``Σ wᵢLᵢ``, ``w = softmax(N(0, I))``
    drawn afresh every step from the method's generator (``seed``). Weights on the simplex.
    """

    has_weights = True

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, seed: int = 0) -> None:
        super().__init__(model, optimizer, seed=seed)

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        w = draw_rlw_weights(self.n_tasks, self.generator).tolist()
        return sum(wi * li for wi, li in zip(w, ls)), w  # type: ignore[return-value]


class DWA(LossWeightingMethod):
    """Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, eq. 1)::

        wᵢ(t) = n · exp(rᵢ(t−1)/T) / Σⱼ exp(rⱼ(t−1)/T),   rᵢ(t−1) = L̄ᵢ(t−1) / L̄ᵢ(t−2),

    objective ``Σ wᵢ Lᵢ``; ``w = 1`` until two averaging periods have been seen. ``T = 2``
    (paper). The paper averages over epochs; our default averages over sliding windows of
    ``window = 25`` steps (the "iteration window" of the Nash-MTL / FAMO code the PUB paper
    used for its baselines): ``L̄(t−1)`` is the mean of the last ``window`` steps, ``L̄(t−2)``
    of the ``window`` steps before. ``window=None`` uses epoch means as in the paper; the
    trainer must then call :meth:`end_epoch` at the end of each epoch.
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        temperature: float = 2.0,
        window: int | None = 25,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, seed=seed)
        self.temperature = positive("temperature", temperature)
        if window is not None and (not isinstance(window, int) or window < 1):
            raise InputError(f"method.window: must be an integer ≥ 1 or null, got {window!r}")
        self.window = window
        self.history: deque[list[float]] = deque(maxlen=2 * window if window else 1)
        self.epoch_sum = np.zeros(self.n_tasks)
        self.epoch_count = 0
        self.epoch_means: list[list[float]] = []

    def current_weights(self) -> np.ndarray:
        """The weights for the next step (from the loss history so far)."""
        if self.window:
            if len(self.history) < 2 * self.window:
                return np.ones(self.n_tasks)
            h = np.asarray(self.history, dtype=np.float64)
            prev, last = h[: self.window].mean(0), h[self.window :].mean(0)
        else:
            if len(self.epoch_means) < 2:
                return np.ones(self.n_tasks)
            prev, last = map(np.asarray, self.epoch_means[-2:])
        r = last / np.maximum(prev, 1e-300)
        e = np.exp((r - r.max()) / self.temperature)
        return self.n_tasks * e / e.sum()

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        w = self.current_weights().tolist()
        return sum(wi * li for wi, li in zip(w, ls)), w  # type: ignore[return-value]

    def after_step(self, ls: list[torch.Tensor]) -> None:
        vals = [float(x.detach()) for x in ls]
        if self.window:
            self.history.append(vals)
        else:
            self.epoch_sum += np.asarray(vals)
            self.epoch_count += 1

    def end_epoch(self) -> None:
        """Close an averaging period (only used with ``window=None``)."""
        if not self.window and self.epoch_count:
            self.epoch_means.append((self.epoch_sum / self.epoch_count).tolist())
            self.epoch_means = self.epoch_means[-2:]
            self.epoch_sum = np.zeros(self.n_tasks)
            self.epoch_count = 0

    def _extra_state(self) -> dict[str, Any]:
        return {
            "history": [list(h) for h in self.history],
            "epoch_sum": self.epoch_sum.tolist(),
            "epoch_count": self.epoch_count,
            "epoch_means": [list(m) for m in self.epoch_means],
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.history.clear()
        self.history.extend([list(h) for h in state["history"]])
        self.epoch_sum = np.asarray(state["epoch_sum"], dtype=np.float64)
        self.epoch_count = int(state["epoch_count"])
        self.epoch_means = [list(m) for m in state["epoch_means"]]


class Uncertainty(LossWeightingMethod):
    """Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), learned log-variances
    ``sᵢ = log σᵢ²`` trained jointly by the base optimiser (own group, no weight decay)::

        classification (eq. 10, default):  Σ e^{−sᵢ} Lᵢ + ½ sᵢ     (optimum e^{sᵢ} = 2Lᵢ)
        regression     (eq. 7):            Σ ½ e^{−sᵢ} Lᵢ + ½ sᵢ   (optimum e^{sᵢ} = Lᵢ)

    Both give the loss weight ``1/(2Lᵢ)`` at their optimum; the tasks here are binary
    classification, hence the eq. 10 default (the Nash-MTL / FAMO code uses the eq. 7 form).
    ``init`` = 0 (σ = 1). ``lr`` for the log-variances: default the base lr (the authors train
    σ jointly with the network; the Nash-MTL / FAMO code uses 0.025). Weights: the coefficient
    of ``Lᵢ`` (``e^{−sᵢ}`` or ``½e^{−sᵢ}``).
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        form: str = "classification",
        init: float = 0.0,
        lr: float | None = None,
        seed: int = 0,
    ) -> None:
        if form not in ("classification", "regression"):
            raise InputError(f"method.form: 'classification' or 'regression', got {form!r}")
        self.form = form
        self.log_vars = torch.full(
            (model.n_tasks,), float(init), requires_grad=True, device=model_device(model)
        )
        group: dict[str, Any] = {"params": [self.log_vars], "weight_decay": 0.0}
        if lr is not None:
            group["lr"] = positive("lr", lr)
        super().__init__(model, optimizer, seed=seed, extra_groups=[group])

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        c = 1.0 if self.form == "classification" else 0.5
        prec = torch.exp(-self.log_vars)
        obj = sum(c * prec[i] * ls[i] + 0.5 * self.log_vars[i] for i in range(self.n_tasks))
        return obj, (c * prec.detach()).cpu().tolist()  # type: ignore[return-value]

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        info = super().step(losses)
        info.extra.update({f"log_var_{i}": float(v) for i, v in enumerate(self.log_vars.detach())})
        return info

    def _extra_state(self) -> dict[str, Any]:
        return {"log_vars": self.log_vars.detach().clone()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_vars.copy_(state["log_vars"])


class IMTLL(LossWeightingMethod):
    """IMTL-L (Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021, eq. 3): learned
    scales ``e^{sᵢ}`` with objective ``Σ e^{sᵢ}Lᵢ − sᵢ`` (optimum ``e^{sᵢ} = 1/Lᵢ``: every
    scaled loss → 1), all parameters and ``s`` (init 0, no weight decay; ``lr`` default the base
    lr) in one step. Weights: ``e^{sᵢ}``.
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        lr: float | None = None,
        seed: int = 0,
    ) -> None:
        self.log_scales, group = log_scale_group(model, lr)
        super().__init__(model, optimizer, seed=seed, extra_groups=[group])

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        scale = torch.exp(self.log_scales)
        obj = sum(scale[i] * ls[i] - self.log_scales[i] for i in range(self.n_tasks))
        return obj, scale.detach().cpu().tolist()  # type: ignore[return-value]

    def _extra_state(self) -> dict[str, Any]:
        return {"log_scales": self.log_scales.detach().clone()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_scales.copy_(state["log_scales"])


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

    Contract extension: ``needs_closure = True`` and ``step(losses, closure=None)``, see the
    module docstring. Without a closure, ξ is updated at the *next* step from that step's
    losses (a different batch), which conflates the loss change with batch noise; StepInfo
    reports ``extra["closure"] = 0`` then. Weights: ``z`` (the paper's task weights; the
    effective coefficients of the raw ``∇Lᵢ`` are ``(zᵢ/Lᵢ)/c``, also on the simplex).
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


__all__ = [
    "BanditMTL",
    "DWA",
    "FAMO",
    "GradNorm",
    "IMTLL",
    "LossWeightingMethod",
    "RLW",
    "SI",
    "Uncertainty",
    "bandit_mirror_step",
]
