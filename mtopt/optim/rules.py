"""Base update rules of PUB: Adam, AdaGrad and RMSProp on flat tensors with explicit state.

Each rule is a small optax-like piece (DESIGN §1): ``init`` returns its state (moment tensors),
``directions`` computes the per-task updates of Algorithm 1 lines 4–10 (Yuan, Cai & Dong, "A
Parameter Update Balancing Algorithm for Multi-task Ranking Models in Recommendation Systems",
ICDM 2024) *with the moments held constant* — the step each task would take alone, without the
learning rate — and ``feed`` updates the moments with one gradient (lines 15–22). The optimizer
owns the state and calls these functions; they mutate only the buffers they are given.

Arithmetic (default, ``paper_exact=False``) follows ``torch.optim`` for each rule, so that the
update of a single task with ``α = 1`` is exactly what ``torch.optim.<Rule>`` would apply:

* **Adam** (Kingma & Ba, ICLR 2015; ``torch.optim.Adam``): bias-corrected, eps outside the root::

      Δᵢ = m̂ᵢ / (√v̂ᵢ + eps),  m̂ᵢ = (β₁m + (1−β₁)gᵢ)/(1−β₁ᵗ),  v̂ᵢ = (β₂v + (1−β₂)gᵢ²)/(1−β₂ᵗ)

* **AdaGrad** (Duchi et al., JMLR 2011; ``torch.optim.Adagrad``): the accumulator *accumulates*
  ``S ← S + ĝ²`` (Alg. 1 lines 9/21 write RMSProp's moving average for AdaGrad too; we follow
  torch and the AdaGrad paper)::

      Δᵢ = gᵢ / (√(S + gᵢ²) + eps) / (1 + (t−1)·lr_decay)

* **RMSProp** (Tieleman & Hinton 2012; ``torch.optim.RMSprop``, ``momentum=0, centered=False``)::

      Δᵢ = gᵢ / (√(ρv + (1−ρ)gᵢ²) + eps)

``paper_exact=True`` follows Algorithm 1 literally for Adam and RMSProp: no bias correction and
eps *inside* the root (line 6: ``(β₁m + (1−β₁)gᵢ)/√(β₂v + (1−β₂)gᵢ² + eps)``; line 9). It is
refused for AdaGrad, whose line 9 is RMSProp's formula (use ``base="rmsprop"``).

State tensors have shape ``[d]`` (one set of moments, fed ``Σαᵢgᵢ``) or ``[n, d]`` (AdaTask:
one set per task, fed each task's own ``gᵢ``); the formulas broadcast over both.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from mtopt.errors import InputError


def _tiny_plus(x: torch.Tensor) -> torch.Tensor:
    """``x + finfo.tiny`` in place (see the module docstring's speed note)."""
    return x.add_(torch.finfo(x.dtype).tiny)


class BaseRule:
    """Interface of a base update rule (see the module docstring)."""

    name: ClassVar[str] = ""
    #: torch.optim's default eps for this rule
    default_eps: ClassVar[float] = 1e-8
    #: extra hyperparameters (torch.optim names) accepted in ``base_options`` and their defaults
    options: ClassVar[dict[str, float]] = {}
    #: whether :meth:`directions` needs a second ``[n, d]`` work buffer
    needs_work: ClassVar[bool] = False
    #: whether the moments are zero at the start (AdaGrad may start from a constant)
    moment_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, paper_exact: bool = False) -> None:
        self.paper_exact = bool(paper_exact)

    def init(self, like: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Fresh state with tensors shaped like ``like`` (``[d]`` or ``[n, d]``)."""
        return {k: torch.zeros_like(like) for k in self.moment_keys}

    def directions(
        self,
        state: dict[str, torch.Tensor],
        grads: torch.Tensor,
        t: int,
        group: dict[str, Any],
        out: torch.Tensor,
        work: torch.Tensor | None,
    ) -> torch.Tensor:
        """Write the per-task updates (rows of ``grads``, moments held constant) into ``out``.

        ``t`` is the 1-based index of the step being taken (for bias correction / lr decay).
        The result excludes the learning rate: the step would be ``−lr · out[i]``.
        """
        raise NotImplementedError

    def feed(self, state: dict[str, torch.Tensor], g: torch.Tensor, group: dict[str, Any]) -> None:
        """Update the moments in place with gradient ``g`` (shape of the state tensors)."""
        raise NotImplementedError

    def torch_kwargs(self, group: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the equivalent ``torch.optim`` optimizer for ``group``."""
        raise NotImplementedError

    torch_class: ClassVar[type[torch.optim.Optimizer]]


class Adam(BaseRule):
    """Adam (Kingma & Ba, ICLR 2015) as in ``torch.optim.Adam``; PUB Alg. 1 lines 5–7, 16–19."""

    name = "adam"
    default_eps = 1e-8
    needs_work = True
    moment_keys = ("exp_avg", "exp_avg_sq")
    torch_class = torch.optim.Adam

    def directions(self, state, grads, t, group, out, work):  # noqa: D102
        b1, b2 = group["betas"]
        eps = group["eps"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        assert work is not None
        torch.addcmul(_tiny_plus(v * b2), grads, grads, value=1.0 - b2, out=out)
        if self.paper_exact:
            out.add_(eps).sqrt_()
            torch.add(m * b1, grads, alpha=1.0 - b1, out=work)
        else:
            # m̂/(√v̂ + eps) = m'·(√bc2/bc1) / (√v' + eps·√bc2), with m', v' the held moments
            sq_bc2 = math.sqrt(1.0 - b2**t)
            scale = sq_bc2 / (1.0 - b1**t)
            out.sqrt_().add_(eps * sq_bc2)
            torch.add(m * (b1 * scale), grads, alpha=(1.0 - b1) * scale, out=work)
        return torch.div(work, out, out=out)

    def feed(self, state, g, group):  # noqa: D102
        b1, b2 = group["betas"]
        state["exp_avg"].lerp_(g, 1.0 - b1)
        state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1.0 - b2)

    def torch_kwargs(self, group):  # noqa: D102
        return {
            "lr": group["lr"],
            "betas": tuple(group["betas"]),
            "eps": group["eps"],
            "weight_decay": group["weight_decay"],
        }


class Adagrad(BaseRule):
    """AdaGrad (Duchi, Hazan & Singer, JMLR 2011) as in ``torch.optim.Adagrad``; PUB Alg. 1
    lines 8–10, 20–22 with the accumulator accumulating (torch), not averaging (the paper)."""

    name = "adagrad"
    default_eps = 1e-10
    options = {"lr_decay": 0.0, "initial_accumulator_value": 0.0}
    moment_keys = ("sum",)
    torch_class = torch.optim.Adagrad

    def __init__(self, paper_exact: bool = False) -> None:
        if paper_exact:
            raise InputError(
                "paper_exact: Algorithm 1 writes RMSProp's moving average for AdaGrad; "
                "use base='rmsprop' with paper_exact=True, or paper_exact=False for AdaGrad"
            )
        super().__init__(False)

    def init(self, like, group):  # noqa: D102
        return {"sum": torch.full_like(like, float(group["initial_accumulator_value"]))}

    def directions(self, state, grads, t, group, out, work):  # noqa: D102
        torch.addcmul(_tiny_plus(state["sum"].clone()), grads, grads, out=out)
        out.sqrt_().add_(group["eps"])
        torch.div(grads, out, out=out)
        decay = 1.0 + (t - 1) * group["lr_decay"]
        if decay != 1.0:
            out.div_(decay)
        return out

    def feed(self, state, g, group):  # noqa: D102
        state["sum"].addcmul_(g, g, value=1.0)

    def torch_kwargs(self, group):  # noqa: D102
        return {
            "lr": group["lr"],
            "lr_decay": group["lr_decay"],
            "weight_decay": group["weight_decay"],
            "initial_accumulator_value": group["initial_accumulator_value"],
            "eps": group["eps"],
        }


class RMSProp(BaseRule):
    """RMSProp (Tieleman & Hinton, 2012) as in ``torch.optim.RMSprop`` (no momentum, not
    centered); PUB Alg. 1 lines 8–10, 20–22. ``alpha`` is torch's smoothing constant ρ."""

    name = "rmsprop"
    default_eps = 1e-8
    options = {"alpha": 0.99}
    moment_keys = ("square_avg",)
    torch_class = torch.optim.RMSprop

    def directions(self, state, grads, t, group, out, work):  # noqa: D102
        rho = group["alpha"]
        torch.addcmul(_tiny_plus(state["square_avg"] * rho), grads, grads, value=1.0 - rho, out=out)
        if self.paper_exact:
            out.add_(group["eps"]).sqrt_()
        else:
            out.sqrt_().add_(group["eps"])
        return torch.div(grads, out, out=out)

    def feed(self, state, g, group):  # noqa: D102
        rho = group["alpha"]
        state["square_avg"].mul_(rho).addcmul_(g, g, value=1.0 - rho)

    def torch_kwargs(self, group):  # noqa: D102
        return {
            "lr": group["lr"],
            "alpha": group["alpha"],
            "eps": group["eps"],
            "weight_decay": group["weight_decay"],
        }


RULES: dict[str, type[BaseRule]] = {"adam": Adam, "adagrad": Adagrad, "rmsprop": RMSProp}


def make_rule(name: str, paper_exact: bool = False) -> BaseRule:
    """The base rule registered as ``name`` (``adam``, ``adagrad`` or ``rmsprop``)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in RULES:
        raise InputError(
            f"base: unknown base rule {name!r} (known: {', '.join(RULES)}); "
            "PUB balances per-task updates of an adaptive rule"
        )
    return RULES[key](paper_exact)


def check_options(rule: BaseRule, options: dict[str, Any] | None) -> dict[str, float]:
    """Validate ``base_options`` for ``rule`` and fill torch's defaults."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(rule.options))
    if unknown:
        known = ", ".join(rule.options) or "none"
        raise InputError(
            f"base_options: {', '.join(unknown)} not supported by base {rule.name!r} "
            f"(supported: {known})"
        )
    out = dict(rule.options)
    for k, v in options.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise InputError(f"base_options.{k}: expected a number, got {v!r}") from None
        if not math.isfinite(out[k]) or out[k] < 0:
            raise InputError(f"base_options.{k}: must be a finite number ≥ 0, got {v!r}")
    if rule.name == "rmsprop" and not out["alpha"] < 1.0:
        raise InputError(f"base_options.alpha: RMSProp smoothing must be < 1, got {out['alpha']}")
    return out
