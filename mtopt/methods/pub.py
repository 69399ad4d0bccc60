"""Update-level methods: PUB (and its UMM compositions) and the ClippyAdam / AdaTask baselines.

Thin :class:`~mtopt.methods.base.Method` wrappers around :mod:`mtopt.optim`: the base optimiser
of the run (``optimizer.name``: adam, adagrad or rmsprop, with its lr, betas, eps, weight decay
and ``extra`` torch options) becomes PUB's base rule. Registered as ``pub``, ``pub-clippy``,
``pub-adatask``, ``clippy-adam`` and ``adatask``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.base import Method, OptimizerConfig, StepInfo
from mtopt.models.base import MultiTaskModel


def _losses(losses: Sequence[torch.Tensor], n: int) -> list[torch.Tensor]:
    out = list(losses)
    if len(out) != n:
        raise InputError(f"method.step: expected {n} task losses, got {len(out)}")
    return out


def _base_kwargs(cfg: OptimizerConfig) -> dict[str, Any]:
    """PUB / AdaTask keyword arguments from the run's optimiser config."""
    from mtopt.optim.rules import RULES

    name = cfg.name.lower()
    if name not in RULES:
        raise InputError(
            f"optimizer.name: update-level methods need an adaptive base rule "
            f"({', '.join(RULES)}), got {cfg.name!r}"
        )
    extra = dict(cfg.extra or {})
    # torch.optim.Adagrad / RMSprop keep their own eps defaults (as make_torch_optimizer does)
    eps = cfg.eps if name == "adam" else extra.pop("eps", None)
    allowed = RULES[name].options
    unknown = sorted(set(extra) - set(allowed))
    if unknown:
        raise InputError(
            f"optimizer.extra: {', '.join(unknown)} not supported with {name} in PUB/AdaTask "
            f"(supported: {', '.join(allowed) or 'none'})"
        )
    return {
        "lr": cfg.lr,
        "base": name,
        "betas": tuple(cfg.betas),
        "eps": eps,
        "weight_decay": cfg.weight_decay,
        "base_options": extra,
    }


def _floats(d: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in d.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


#: named per-group balancings a recipe can ask for (``method.groups``)
GROUPINGS = ("embeddings-vs-trunk", "layer")


def _groups(model: MultiTaskModel, groups: Any) -> Any:
    """``method.groups`` as :class:`mtopt.optim.PUB` takes it: None, ``"layer"`` (one group per
    shared tensor) or ``"embeddings-vs-trunk"``: the shared weights of the model's
    ``nn.Embedding``/``nn.EmbeddingBag`` modules in one group, every other shared tensor in
    the other (one group if either is empty)."""
    if groups is None or groups == "layer":
        return groups
    if groups != "embeddings-vs-trunk":
        raise InputError(f"groups: one of {', '.join(GROUPINGS)}, got {groups!r}")
    from torch import nn

    emb = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
    shared = list(model.shared_parameters())
    parts = [[p for p in shared if id(p) in emb], [p for p in shared if id(p) not in emb]]
    return [g for g in parts if g]


class PUBMethod(Method):
    """PUB (Yuan, Cai & Dong, ICDM 2024, Algorithm 1) as a method: ``weights`` = the α applied.

    Hyperparameters are those of :class:`mtopt.optim.PUB` (``umm``, ``solver``, ``solve_every``,
    ``alpha_scale``, ``fallback``, ``paper_exact``, ``umm_options``, ``solver_options``, ``tol``,
    ``backward``, ``diagnostics``, ``between_solves``, ``weighted_tol``, ``weighting``,
    ``weighting_options``, ``groups``: ``embeddings-vs-trunk`` or ``layer``); StepInfo.extra carries
    the residual, stats counters, with ``diagnostics: true`` ``cos_shared``, ``cos_task`` and
    ``diff`` (paper eq. (1)), and with ``between_solves: weighted`` ``weighted_step`` (1 when
    the step took the one-backward path).
    """

    has_weights = True
    default_umm: str | None = None

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, **hp: Any) -> None:
        super().__init__(model, optimizer)
        from mtopt.optim import PUB

        hp.setdefault("umm", self.default_umm)
        if "groups" in hp:
            hp["groups"] = _groups(model, hp["groups"])
        self.opt = PUB(
            model.shared_parameters(), model.all_task_parameters(), **_base_kwargs(optimizer), **hp
        )

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        losses = _losses(losses, self.n_tasks)
        task_losses = [float(x.detach()) for x in losses]
        self.opt.zero_grad(set_to_none=True)
        self.opt.step(losses)
        last = self.opt.last
        extra = _floats(last.diagnostics)
        if last.residual is not None:
            extra["residual"] = float(last.residual)
        extra.update({f"n_{k}": float(v) for k, v in self.opt.stats.items()})
        if last.group_solve_seconds is not None:  # per-group balancing: each group's cost
            extra.update({f"solve_seconds_g{k}": v for k, v in enumerate(last.group_solve_seconds)})
        if self.opt.between_solves == "weighted":  # which path the step took (steps.csv)
            extra["weighted_step"] = float(last.path == "weighted")
        return StepInfo(
            loss=sum(task_losses),
            task_losses=task_losses,
            weights=last.alpha,
            solver_status=last.status,
            solve_seconds=last.solve_seconds if last.solved else None,
            extra=extra,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])


class PUBClippy(PUBMethod):
    """PUB with the Clippy UMM (Tang et al., KDD 2023) on the joint update by default."""

    default_umm = "clippy"


class PUBAdaTask(PUBMethod):
    """PUB with the AdaTask UMM (Yang et al., AAAI 2023): per-task moments."""

    default_umm = "adatask"


class ClippyAdamMethod(Method):
    """Baseline ``Clippy`` row: Σ losses with :class:`mtopt.optim.ClippyAdam` on all parameters
    (Tang et al., KDD 2023). Hyperparameters ``lambda_rel`` (0.5), ``lambda_abs`` (1e-2)."""

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        lambda_rel: float = 0.5,
        lambda_abs: float = 1e-2,
    ) -> None:
        super().__init__(model, optimizer)
        from mtopt.optim import ClippyAdam

        if optimizer.name.lower() != "adam":
            raise InputError(f"optimizer.name: clippy-adam is Adam-based, got {optimizer.name!r}")
        self.opt = ClippyAdam(
            [p for p in model.parameters() if p.requires_grad],
            lr=optimizer.lr,
            betas=tuple(optimizer.betas),
            eps=optimizer.eps,
            weight_decay=optimizer.weight_decay,
            lambda_rel=lambda_rel,
            lambda_abs=lambda_abs,
        )

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        losses = _losses(losses, self.n_tasks)
        self.opt.zero_grad(set_to_none=True)
        total = sum(losses)
        total.backward()
        self.opt.step()
        return StepInfo(
            loss=float(total.detach()),
            task_losses=[float(x.detach()) for x in losses],
            weights=[1.0] * self.n_tasks,
            extra={"clip_min_factor": self.opt.last_min_factor},
        )

    def state_dict(self) -> dict[str, Any]:
        # torch's state_dict aliases the live moments; a checkpoint must be a snapshot
        return {"opt": copy.deepcopy(self.opt.state_dict())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(copy.deepcopy(state["opt"]))


class AdaTaskMethod(Method):
    """Baseline ``AdaTask`` row (Yang et al., AAAI 2023): per-task moments on the shared
    parameters, shared step ``−lr·Σᵢ Δθᵢ``; :class:`mtopt.optim.AdaTask`."""

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig, **hp: Any) -> None:
        super().__init__(model, optimizer)
        from mtopt.optim import AdaTask

        self.opt = AdaTask(
            model.shared_parameters(), model.all_task_parameters(), **_base_kwargs(optimizer), **hp
        )

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        losses = _losses(losses, self.n_tasks)
        task_losses = [float(x.detach()) for x in losses]
        self.opt.zero_grad(set_to_none=True)
        self.opt.step(losses)
        return StepInfo(
            loss=sum(task_losses),
            task_losses=task_losses,
            weights=[1.0] * self.n_tasks,
            extra=_floats(self.opt.last.diagnostics),
        )

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
