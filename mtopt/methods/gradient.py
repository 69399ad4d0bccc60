"""Gradient-level baselines: aggregate the per-task gradients on the shared parameters.

Every method here follows one loop (:class:`GradientMethod`), per step:

1. per-task gradients ``gᵢ = ∇_shared Lᵢ`` (one ``torch.autograd.grad`` per task, with
   ``retain_graph``), stacked as ``J = [g₁ … gₙ]ᵀ``; the Gram ``G = JJᵀ`` is formed once in
   float64 by the aggregator (:mod:`mtopt.methods.aggregators`);
2. the aggregator turns ``J`` into one direction ``d`` written to ``.grad`` of the shared
   parameters;
3. task-specific parameters get the gradient of ``Σᵢ Lᵢ`` (DESIGN §1: "task-specific params:
   plain base-optimizer step, always");
4. optional gradient clipping (``max_norm``, on the shared parameters, as in the authors' code
   of Nash-MTL / FAMO), then one step of the base optimizer (``make_torch_optimizer``) on all
   parameters.

``StepInfo.loss`` is ``Σᵢ Lᵢ`` (unweighted); ``StepInfo.weights`` are the task weights where the
method's paper defines them (MGDA, MGDA-UB, IMTL-G, IMTL, Nash-MTL), i.e. coefficients ``wᵢ``
with ``d = Σ wᵢ ∇Lᵢ``. Stochastic methods (PCGrad, GradDrop) draw from their own
``torch.Generator`` seeded by the ``seed`` hyperparameter and saved in ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods._common import (
    StatefulStepMixin,
    check_losses,
    clip_,
    flat,
    log_scale_group,
    make_generator,
    numeric_info,
    positive,
    set_flat_grad,
    set_grads,
    split_parameters,
    task_jacobians,
)
from mtopt.methods.aggregators import get_aggregator
from mtopt.methods.aggregators.base import Aggregator, combine, gram64
from mtopt.methods.aggregators.imtl import imtl_g_weights
from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.models.base import MultiTaskModel


class GradientMethod(StatefulStepMixin, Method):
    """Base class of the gradient-level methods (see the module docstring).

    Subclasses set :attr:`aggregator_name` and pass the aggregator's hyperparameters to
    ``__init__``. Hyperparameters common to all: ``max_norm`` (clip the shared gradient norm,
    0 = off) and ``seed`` (the method's RNG).
    """

    aggregator_name: str = ""
    #: multi-process hook (:mod:`mtopt.distributed`): averages ``J`` and ``T`` over ranks in
    #: place right after the per-task backward passes, so the aggregator sees the global ``J``
    grad_reducer: Callable[[torch.Tensor], torch.Tensor] | None = None
    #: FAMO-style post-step loss evaluation is not needed (see loss_weighting.FAMO)
    needs_closure: bool = False

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        *,
        max_norm: float = 0.0,
        seed: int = 0,
        extra_params: Sequence[dict[str, Any]] = (),
        **aggregator_hp: Any,
    ) -> None:
        super().__init__(model, optimizer)
        self.shared, self.others = split_parameters(model)
        if not self.shared:
            raise InputError(
                f"method {self.aggregator_name}: the backbone declares no shared parameters"
            )
        self.aggregator: Aggregator = get_aggregator(self.aggregator_name, **aggregator_hp)
        self.max_norm = positive("max_norm", max_norm, allow_zero=True)
        self.generator = make_generator(seed)
        groups: list[dict[str, Any]] = [{"params": self.shared + self.others}]
        groups += list(extra_params)
        self.opt = make_torch_optimizer(groups, optimizer)
        self.n_steps = 0

    # -- one step ---------------------------------------------------------------------------
    def _jacobians(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`task_jacobians`, averaged over ranks by :attr:`grad_reducer` when set."""
        J, T = task_jacobians(ls, self.shared, self.others)
        if self.grad_reducer is not None:
            J, T = self.grad_reducer(J), self.grad_reducer(T)
        return J, T

    def _direction(
        self, J: torch.Tensor, losses: list[torch.Tensor]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(d, weights)`` for the Jacobian ``J`` (override for stateful methods)."""
        det = [float(x.detach()) for x in losses]
        return self.aggregator(J, generator=self.generator, losses=det)

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        """Per-task gradients, aggregation on the shared parameters, one optimiser step."""
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        J, T = self._jacobians(ls)
        d, w = self._direction(J, ls)
        set_flat_grad(self.shared, d)
        set_flat_grad(self.others, T.sum(0))
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        extra = numeric_info(self.aggregator.last_info)
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, w, extra)


class MGDA(GradientMethod):
    """MGDA (Sener & Koltun, NeurIPS 2018, eq. 3): min-norm point of the gradients' hull.

    Hyperparameters: ``normalization`` (``none`` default | ``l2`` | ``loss`` | ``loss+``),
    ``solver`` (``exact`` default | ``frank_wolfe``), ``max_norm`` (0), ``seed``. Weights on
    the simplex. See :mod:`mtopt.methods.aggregators.mgda`.
    """

    aggregator_name = "mgda"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        normalization: str = "none",
        solver: str = "exact",
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(
            model,
            optimizer,
            max_norm=max_norm,
            seed=seed,
            normalization=normalization,
            solver=solver,
        )


class MGDAUB(MGDA):
    """MGDA-UB (Sener & Koltun, NeurIPS 2018, Sec. 3.3, eq. 6): MGDA on the representation.

    The weights solve MGDA's min-norm problem on the gradients of the task losses with respect
    to the shared representation ``Z = model.representation`` (set by the backbone's forward;
    the whole batch, flattened), an upper bound that needs one backward per task through the
    towers only. The shared parameters then get ``∇ Σ wᵢLᵢ`` (one backward), the task-specific
    ones ``∇ Σ Lᵢ``. Hyperparameters as :class:`MGDA`.
    """

    def _representation(self) -> list[torch.Tensor]:
        rep = getattr(self.model, "representation", None)
        reps = [rep] if isinstance(rep, torch.Tensor) else list(rep or [])
        if not reps or not all(isinstance(r, torch.Tensor) and r.requires_grad for r in reps):
            raise InputError(
                f"method mgda-ub: backbone {type(self.model).__name__} does not set "
                "model.representation (a tensor in the autograd graph) during forward; "
                "use method 'mgda' instead"
            )
        return reps

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        reps = self._representation()
        self.opt.zero_grad(set_to_none=True)
        rows = []
        for loss in ls:
            gs = torch.autograd.grad(loss, reps, retain_graph=True, allow_unused=True)
            rows.append(flat(gs, reps))
        Jz = torch.stack(rows)
        _, w = self.aggregator(Jz, losses=[float(x.detach()) for x in ls])
        assert w is not None
        wl = [float(x) for x in w]
        weighted = sum(wi * li for wi, li in zip(wl, ls))
        gs = torch.autograd.grad(weighted, self.shared, retain_graph=True, allow_unused=True)
        set_grads(self.shared, gs)
        if self.others:
            go = torch.autograd.grad(sum(ls), self.others, allow_unused=True)
            set_grads(self.others, go)
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        extra = numeric_info(self.aggregator.last_info)
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, wl, extra)


class PCGrad(GradientMethod):
    """PCGrad (Yu et al., NeurIPS 2020, Algorithm 1): gradient surgery on conflicting pairs.

    Hyperparameters: ``reduction`` (``sum`` default | ``mean``), ``max_norm`` (0), ``seed``
    (the projection order). See :mod:`mtopt.methods.aggregators.pcgrad`.
    """

    aggregator_name = "pcgrad"

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        reduction: str = "sum",
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, reduction=reduction)


class CAGrad(GradientMethod):
    """CAGrad (Liu et al., NeurIPS 2021, eq. 3 via its dual), ``c = 0.4``, ``rescale = 1``.

    Output ``n·d*/(1 + c²)`` (authors' code); see :mod:`mtopt.methods.aggregators.cagrad`.
    """

    aggregator_name = "cagrad"

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        c: float = 0.4,
        rescale: int = 1,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, c=c, rescale=rescale)


class GradDrop(GradientMethod):
    """GradDrop (Chen et al., NeurIPS 2020, eq. 1-2): sign dropout by gradient sign purity.

    Hyperparameters: ``leak`` (0.0), ``max_norm`` (0), ``seed``. See
    :mod:`mtopt.methods.aggregators.graddrop`.
    """

    aggregator_name = "graddrop"

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        leak: float | Sequence[float] = 0.0,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, leak=leak)


class IMTLG(GradientMethod):
    """IMTL-G (Liu et al., ICLR 2021, eq. 7): equal projections on the unit task gradients.

    Computed on the shared-parameter gradients (the paper's cheaper variant uses the shared
    representation). Weights α with Σα = 1. See :mod:`mtopt.methods.aggregators.imtl`.
    """

    aggregator_name = "imtl_g"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed)


class IMTL(GradientMethod):
    """Hybrid IMTL (Liu et al., ICLR 2021, Algorithm 1): IMTL-L loss scaling + IMTL-G.

    Each loss is scaled by a learned ``e^{sᵢ}`` (IMTL-L, eq. 3: minimise
    ``e^{sᵢ}Lᵢ − sᵢ`` in sᵢ, so ``e^{sᵢ} → 1/Lᵢ``); IMTL-G's α is computed on the gradients of
    the scaled losses ``L̃ᵢ = e^{sᵢ}Lᵢ`` on the shared parameters; shared parameters get
    ``Σ αᵢ ∇L̃ᵢ``, task-specific ones ``∇ Σ L̃ᵢ`` (the paper scales the towers' losses too), the
    scales ``sᵢ`` the gradient ``e^{sᵢ}Lᵢ − 1``; all in one base-optimiser step (s without weight
    decay, init 0, ``lr`` default the base lr). Reported weights: ``αᵢ e^{sᵢ}``, the coefficients
    of the raw ``∇Lᵢ``.
    """

    aggregator_name = "imtl_g"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        lr: float | None = None,
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.log_scales, group = log_scale_group(model, lr)
        super().__init__(model, optimizer, max_norm=max_norm, seed=seed, extra_params=[group])

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        scale = torch.exp(self.log_scales.detach())
        scaled = [scale[i] * ls[i] for i in range(self.n_tasks)]
        J, T = self._jacobians(scaled)
        alpha = imtl_g_weights(gram64(J))
        set_flat_grad(self.shared, combine(alpha, J))
        set_flat_grad(self.others, T.sum(0))
        raw = torch.stack([x.detach().to(scale.device, scale.dtype) for x in ls])
        self.log_scales.grad = scale * raw - 1.0
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        w = alpha * scale.cpu().numpy().astype(np.float64)
        extra = {f"log_scale_{i}": float(v) for i, v in enumerate(self.log_scales.detach())}
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, w, extra)

    def _extra_state(self) -> dict[str, Any]:
        return {"log_scales": self.log_scales.detach().clone()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.log_scales.copy_(state["log_scales"])


class NashMTL(GradientMethod):
    """Nash-MTL (Navon et al., ICML 2022, eq. 2): ``Gα = 1/α`` via :func:`mtopt.solvers.solve`.

    Hyperparameters (authors' defaults): ``update_weights_every`` (alias ``solve_every``, the
    recipe's generic name; 1: re-solve α every step; in between, one backward of ``Σ αᵢLᵢ``
    with the last α), ``max_norm`` (1.0: the shared gradient is clipped to this norm),
    ``normalize`` (``frobenius``: solve on ``G/‖G‖_F``), ``solver`` (``newton``) and ``tol`` /
    ``solver_options`` for the backend, ``seed``.

    No α (status ``pareto_stationary``, or a solve that returns none): the step keeps the last
    α when there is one and otherwise skips the shared step (shared gradients cleared, so the
    optimiser leaves the shared parameters and their moments untouched; the task-specific
    parameters still step). Each such step is counted in ``StepInfo.extra["fallbacks"]``.
    """

    aggregator_name = "nashmtl"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        update_weights_every: int = 1,
        max_norm: float = 1.0,
        normalize: str = "frobenius",
        solver: str = "newton",
        tol: float | None = None,
        solver_options: dict[str, Any] | None = None,
        seed: int = 0,
        solve_every: int | None = None,
    ) -> None:
        super().__init__(
            model,
            optimizer,
            max_norm=max_norm,
            seed=seed,
            normalize=normalize,
            solver=solver,
            tol=tol,
            solver_options=solver_options,
        )
        # the method clips the parameter gradients itself (same norm as the aggregator's d)
        self.aggregator.max_norm = 0.0
        if solve_every is not None:  # the recipe's generic name (as for PUB)
            if update_weights_every not in (1, solve_every):
                raise InputError(
                    "method.solve_every / method.update_weights_every: give one of them "
                    f"(got {solve_every!r} and {update_weights_every!r})"
                )
            update_weights_every = solve_every
        try:
            every = int(update_weights_every)
        except (TypeError, ValueError):
            every = 0
        if every < 1:
            raise InputError(
                f"method.update_weights_every: must be an integer ≥ 1, got {update_weights_every!r}"
            )
        self.update_weights_every = every
        self.alpha: np.ndarray | None = None
        self.fallbacks = 0

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        solve_now = self.alpha is None or self.n_steps % self.update_weights_every == 0
        status = None
        seconds = None
        self.aggregator.last_info = {}
        if solve_now:
            J, T = self._jacobians(ls)
            alpha = self.aggregator.solve_gram(gram64(J), alpha0=self.alpha)  # type: ignore[attr-defined]
            status = self.aggregator.last_info.get("status")
            seconds = self.aggregator.last_info.get("solve_seconds")
            if alpha is None:
                self.fallbacks += 1
            else:
                self.alpha = alpha
            set_flat_grad(self.shared, None if self.alpha is None else combine(self.alpha, J))
            set_flat_grad(self.others, T.sum(0))
        else:
            assert self.alpha is not None
            weighted = sum(float(a) * li for a, li in zip(self.alpha, ls))
            set_grads(
                self.shared,
                torch.autograd.grad(weighted, self.shared, retain_graph=True, allow_unused=True),
            )
            if self.others:
                set_grads(self.others, torch.autograd.grad(sum(ls), self.others, allow_unused=True))
        norm = clip_(self.shared, self.max_norm)
        self.opt.step()
        self.n_steps += 1
        extra = numeric_info(self.aggregator.last_info)
        extra["fallbacks"] = float(self.fallbacks)
        extra["solved"] = float(solve_now)
        if norm is not None:
            extra["shared_grad_norm"] = norm
        return self._info(ls, self.alpha, extra, solver_status=status, solve_seconds=seconds)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "alpha": None if self.alpha is None else [float(a) for a in self.alpha],
            "fallbacks": self.fallbacks,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        a = state.get("alpha")
        self.alpha = None if a is None else np.asarray(a, dtype=np.float64)
        self.fallbacks = int(state.get("fallbacks", 0))
