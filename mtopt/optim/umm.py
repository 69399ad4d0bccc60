"""Update manipulation methods (UMMs) as small pieces with explicit state.

A UMM changes how PUB's per-task updates are formed or bounded (Algorithm 1 line 12,
``D = [s(Δθ₁) … s(Δθₙ)]``, of Yuan et al., ICDM 2024). Each piece declares *where* it acts:

* ``per_task_moments`` — which moments feed what (AdaTask): the base rule keeps one set of
  moments per task, fed with that task's own gradient ``gᵢ``, instead of one shared set fed
  ``Σαᵢgᵢ``;
* :meth:`UMM.on_directions` — on each task's update ``Δθᵢ`` before α is solved (``D`` itself);
* :meth:`UMM.on_update` — on the joint update ``Dα`` after α.

State is explicit: :meth:`UMM.init` returns a dict the optimizer stores (and checkpoints); the
transforms mutate only the tensors passed in. How each UMM composes with PUB is a design
decision, stated in each class's docstring and in docs/pub.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mtopt.errors import InputError
from mtopt.optim.flat import FlatLayout


@dataclass
class UMMContext:
    """What a UMM may read during one step (never mutate)."""

    lr: float
    layout: FlatLayout
    #: the shared parameters as one flat vector *before* this step (None unless a UMM needs it)
    theta: torch.Tensor | None


class UMM:
    """Base class of update manipulation methods (identity transforms)."""

    name: ClassVar[str] = ""
    #: the base rule keeps one set of moments per task, fed each task's own gradient
    per_task_moments: ClassVar[bool] = False
    #: the transforms need the flat parameter vector (``UMMContext.theta``)
    needs_params: ClassVar[bool] = False

    def init(self, layout: FlatLayout, n_tasks: int) -> dict[str, Any]:
        """Explicit state of this piece (checkpointed by the optimizer)."""
        return {}

    def on_directions(self, D: torch.Tensor, ctx: UMMContext, state: dict[str, Any]) -> None:
        """Transform the per-task updates ``D`` (``[n, d]``, rows = tasks) in place."""

    def on_update(self, u: torch.Tensor, ctx: UMMContext, state: dict[str, Any]) -> None:
        """Transform the joint update ``u = Dα`` (``[d]``) in place."""

    def describe(self) -> dict[str, Any]:
        """Hyperparameters, for logs and checkpoints."""
        return {"name": self.name}


class AdaTaskUMM(UMM):
    """AdaTask (Yang et al., "AdaTask: A Task-Aware Adaptive Learning Rate Approach to
    Multi-Task Learning", AAAI 2023, arXiv 2211.15055; its task-wise AdaGrad/RMSProp/Adam):
    task-wise accumulated moments for the shared parameters.

    **Composition with PUB (our decision).** The base rule keeps ``mᵢ, vᵢ`` per task and feeds
    them with the task's *own* gradient ``gᵢ`` (AdaTask's rule), not with ``αᵢgᵢ``. Task i's
    column is then exactly the update AdaTask/Adam would take for task i alone,
    ``Δθᵢ = m̂ᵢ/(√v̂ᵢ + eps)``, which is PUB's premise ``Δθᵢ = f(gᵢ)`` (paper §V-B, assumption 1);
    α only combines the columns. Consequences, tested: the moments do not depend on α (so
    ``alpha_scale`` changes the step length, not the moments), and because Adam's per-task update
    is invariant to the scale of that task's loss (up to eps), so are ``D``, α and the shared step
    at *every* step, not only the first (contrast DESIGN §2.2 for PUB with shared moments).
    """

    name = "adatask"
    per_task_moments = True


class ClippyUMM(UMM):
    """Clippy (Tang et al., "Improving Training Stability for Multitask Ranking Models in
    Recommender Systems", KDD 2023, arXiv 2302.09178, the Clippy algorithm): scale each
    parameter tensor's update
    by ``σ = min(1, min_j (λ_rel·|w_j| + λ_abs) / |lr·Δ_j|)`` so that
    ``|lr·Δ_j| ≤ λ_rel·|w_j| + λ_abs`` for every coordinate (an L∞-style, per-tensor bound on the
    update, not the gradient).

    **Composition with PUB (our decision, ``where``).**

    * ``"joint"`` (default): α is solved on the unclipped ``D``; the bound is applied per tensor
      to the joint update ``lr·Dα`` that is actually written to the parameters. This is the only
      placement that guarantees Clippy's invariant on the applied step (α rescales the columns
      arbitrarily, by ~1/‖Δθᵢ‖ with ``alpha_scale="exact"``), and it is how the PUB authors' code
      combines them (their ClippyAdam steps on the α-weighted loss).
    * ``"task"``: Algorithm 1 line 12 literally, ``D = [s(Δθ₁) … s(Δθₙ)]``: each task's update is
      clipped (against ``lr`` and the current weights) before α is solved on the clipped ``D``;
      the applied step ``lr·Σαᵢ s(Δθᵢ)`` is then bounded only by ``Σαᵢ`` times the bound.

    Either way the moments are fed the unclipped gradient (Clippy's default: the accumulator
    update is not clipped). Defaults ``λ_rel = 0.5, λ_abs = 1e-2`` are those of the PUB authors'
    ClippyAdam.
    """

    name = "clippy"
    needs_params = True

    def __init__(self, lambda_rel: float = 0.5, lambda_abs: float = 1e-2, where: str = "joint"):
        for key, val in (("lambda_rel", lambda_rel), ("lambda_abs", lambda_abs)):
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
                raise InputError(f"umm_options.{key}: must be a finite number ≥ 0, got {val!r}")
        if where not in ("joint", "task"):
            raise InputError(f"umm_options.where: must be 'joint' or 'task', got {where!r}")
        self.lambda_rel = float(lambda_rel)
        self.lambda_abs = float(lambda_abs)
        self.where = where

    def init(self, layout: FlatLayout, n_tasks: int) -> dict[str, Any]:  # noqa: D102
        return {"min_factor": None}

    def factors(self, X: torch.Tensor, ctx: UMMContext) -> torch.Tensor:
        """Per-tensor factors ``σ ∈ [0, 1]`` for the rows of ``X`` (``[r, d]``) → ``[r, T]``."""
        assert ctx.theta is not None
        bound = ctx.theta.abs().mul_(self.lambda_rel).add_(self.lambda_abs)
        step = X.abs().mul_(ctx.lr)
        ratio = torch.where(step > 0, bound / step, torch.full_like(step, math.inf))
        return ctx.layout.segment_amin(ratio).clamp_(max=1.0)

    def _apply(self, X: torch.Tensor, ctx: UMMContext, state: dict[str, Any]) -> None:
        if ctx.lr == 0:
            return
        f = self.factors(X, ctx)
        state["min_factor"] = float(f.min()) if f.numel() else 1.0
        X.mul_(ctx.layout.expand_segments(f))

    def on_directions(self, D, ctx, state):  # noqa: D102
        if self.where == "task":
            self._apply(D, ctx, state)

    def on_update(self, u, ctx, state):  # noqa: D102
        if self.where == "joint":
            self._apply(u.unsqueeze(0), ctx, state)

    def describe(self) -> dict[str, Any]:  # noqa: D102
        return {
            "name": self.name,
            "lambda_rel": self.lambda_rel,
            "lambda_abs": self.lambda_abs,
            "where": self.where,
        }


def clippy_factor(
    update: torch.Tensor, param: torch.Tensor, lambda_rel: float, lambda_abs: float
) -> torch.Tensor:
    """Clippy's per-tensor factor ``min(1, min_j (λ_rel|w_j| + λ_abs)/|update_j|)`` (0-dim).

    ``update`` is the full step (learning rate included) that would be subtracted from ``param``.
    """
    step = update.abs()
    bound = param.detach().abs().mul(lambda_rel).add_(lambda_abs)
    ratio = torch.where(step > 0, bound / step, torch.full_like(step, math.inf))
    if ratio.numel() == 0:
        return torch.ones((), dtype=update.dtype, device=update.device)
    return ratio.min().clamp(max=1.0)


def make_umms(
    umm: Any,
    options: dict[str, Any] | None = None,
    *,
    lookup: Callable[[str], Callable[..., Any]],
) -> list[UMM]:
    """Resolve ``umm``: None, a name, a :class:`UMM`, a UMM factory (a callable such as a UMM
    class, how the composition root passes a recipe's UMM), or a sequence of those.

    ``options`` are keyword arguments for the factory when ``umm`` is a single name or
    factory; ``lookup(name)`` returns the factory of a name (the caller owns name resolution:
    :func:`mtopt.optim.pub.resolve`). At most one UMM may set ``per_task_moments``.
    """
    if umm is None:
        return []
    single = isinstance(umm, (str, UMM)) or (callable(umm) and not isinstance(umm, Sequence))
    items = [umm] if single else list(umm)
    by_factory = len(items) == 1 and not isinstance(items[0], UMM)
    if options and not by_factory:
        raise InputError("umm_options: only valid with a single UMM given by name or factory")
    out: list[UMM] = []
    for item in items:
        if isinstance(item, UMM):
            out.append(item)
            continue
        if isinstance(item, str):
            factory = lookup(item)
        elif callable(item):
            factory, item = item, getattr(item, "__name__", type(item).__name__)
        else:
            raise InputError(
                f"umm: expected a name, a UMM instance or a factory, got {type(item).__name__}"
            )
        try:
            obj = factory(**(options or {}))
        except TypeError as exc:
            raise InputError(f"umm_options: invalid options for UMM {item!r} ({exc})") from None
        if not isinstance(obj, UMM):
            raise InputError(f"umm: {item!r} is not an update manipulation method")
        out.append(obj)
    if sum(u.per_task_moments for u in out) > 1:
        raise InputError("umm: at most one UMM may keep per-task moments (e.g. 'adatask')")
    return out
