"""DRGrad: router and updater networks on the gradients of the split-tower backbone.

Liu, Miao & Xia, "Direct Routing Gradient (DRGrad): A Personalized Information Surgery for
Multi-Task Learning (MTL) Recommendations", AAAI 2025 (arXiv:2510.09643), Figure 3(a)/(b).
The paper's equations are not available to us; the formulas below are our reading of the
captions and of the authors' TensorFlow code, each choice documented in ``docs/drgrad.md``.

Per step, one backward of ``Σᵢ Lᵢ`` (exactly LS) gives the shared gradient and, because every
tower belongs to one task, the per-task tower gradients g1′ (T1′), g1″ (T1″) and g_j (T_j).

**Router** (Fig. 3a; :func:`route`). For each primary branch b ∈ {′, ″} and auxiliary task j,
on the aligned tower tensors (``scope``), with ``c = cos(g1ᵇ, g_j)``::

    g_R,1ᵇ = g1ᵇ + Σ_j w_j · h(g_j; g1ᵇ)
    h = g_j                                   if c ≥ 0   (cooperating: pass unchanged)
    h = g_j − (⟨g_j, g1ᵇ⟩/‖g1ᵇ‖²) g1ᵇ          if c < 0, conflict="project" (default)
    h = (1 − c) g_j                           if c < 0, conflict="code"  (authors' formula)
    h = 0                                     if c < 0, conflict="drop"
    w_j = clip(‖g1ᵇ‖/‖g_j‖, lo, hi)  (scale="norm", default) | the authors' ratio | a constant

**Updater** (Fig. 3b; :func:`support`, :func:`updater_mu`). From g1ᵇ and g_R,1ᵇ, the support
``sᵇ = cos(g1ᵇ, g_R,1ᵇ − g1ᵇ)`` (how much the routed-in information agrees with the branch),
smoothed ``s̄ ← β s̄ + (1 − β) s``, gives ``(μ′, μ″) = 2·softmax(s̄ / τ)`` written into the
backbone's ``mu`` buffer: the primary logit is ``μ′ T1′(v_1) + μ″ T1″(v_s)`` from the next step on.

Auxiliary towers keep their own gradient unless ``route_aux`` (the authors' code also routes the
primary tower's gradient into the auxiliary one). Shared parameters take the LS gradient. With
``router=False`` the method is LS on the backbone, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from mtopt.errors import InputError
from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.methods.linalg import cos
from mtopt.models.base import MultiTaskModel

CONFLICT_RULES = ("project", "code", "drop")
SCALE_RULES = ("norm", "code")


def transfer_scale(
    g: torch.Tensor,
    other: torch.Tensor,
    scale: str | float = "norm",
    lo: float = 0.1,
    hi: float = 5.0,
) -> float:
    """The factor ``w`` applied to the gradient routed from ``other`` into ``g``'s tensor.

    ``"norm"``: ``clip(‖g‖/‖other‖, lo, hi)`` (routed information at the receiving task's scale;
    0 if ``other`` is 0). ``"code"``: the authors' ``clip(Σ ĝ / Σ ô, lo, hi)`` (ratio of the
    sums of the unit vectors' entries, 0/0 → 0 before clipping). A number: that constant.
    """
    if not isinstance(scale, str):
        return float(scale)
    g64, o64 = g.double(), other.double()
    ng, no = float(g64.norm()), float(o64.norm())
    if scale == "norm":
        if no == 0.0:
            return 0.0
        return min(max(ng / no, lo), hi)
    if scale == "code":
        a = float(g64.sum()) / ng if ng > 0 else 0.0
        b = float(o64.sum()) / no if no > 0 else 0.0
        ratio = a / b if b != 0.0 else 0.0
        return min(max(ratio, lo), hi)
    raise InputError(f"method.scale: unknown rule {scale!r} (known: norm, code, or a number)")


def route(
    g: torch.Tensor,
    others: Sequence[torch.Tensor],
    *,
    conflict: str = "project",
    scale: str | float = "norm",
    lo: float = 0.1,
    hi: float = 5.0,
) -> tuple[torch.Tensor, list[float]]:
    """DRGrad's router for one receiving gradient (flat ``g``) and the tasks' ``others``.

    Returns the routed gradient (dtype of ``g``, computed in float64) and ``cos(g, other)``
    per other task. See the module docstring for the rule.
    """
    if conflict not in CONFLICT_RULES:
        raise InputError(
            f"method.conflict: unknown rule {conflict!r} (known: {', '.join(CONFLICT_RULES)})"
        )
    g64 = g.double()
    out = g64.clone()
    gg = float(g64 @ g64)
    cosines = []
    for other in others:
        o64 = other.double()
        c = cos(g64, o64)
        cosines.append(c)
        w = transfer_scale(g64, o64, scale, lo, hi)
        if c >= 0.0:
            h = o64
        elif conflict == "project":
            h = o64 - (float(o64 @ g64) / gg) * g64  # c < 0 implies gg > 0
        elif conflict == "code":
            h = (1.0 - c) * o64
        else:
            h = torch.zeros_like(o64)
        out = out + w * h
    return out.to(g.dtype), cosines


def support(g: torch.Tensor, routed: torch.Tensor) -> float:
    """Updater input: ``cos(g, routed − g)``, 0 when nothing was routed in."""
    g64 = g.double()
    return cos(g64, routed.double() - g64)


def updater_mu(s_bar: Sequence[float], temperature: float = 1.0) -> torch.Tensor:
    """``(μ′, μ″) = 2·softmax(s̄ / τ)``: sums to 2, equals (1, 1) when both branches agree."""
    s = torch.tensor([float(x) for x in s_bar], dtype=torch.float64) / temperature
    return 2.0 * torch.softmax(s, dim=0)


def _flat(params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    )


def _write(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    k = 0
    for p in params:
        n = p.numel()
        p.grad = flat[k : k + n].view_as(p).to(p.dtype).clone()
        k += n


class DRGrad(Method):
    """DRGrad's router and updater networks (Liu, Miao & Xia, AAAI 2025, Fig. 3a-b).

    Requires the ``drgrad`` backbone (:class:`mtopt.models.drgrad.DRGradModel`).

    Args:
        model: a :class:`~mtopt.models.drgrad.DRGradModel`.
        optimizer: the base optimiser (one optimiser over all parameters, as LS).
        router: route gradients (``False``: LS on the backbone, μ fixed).
        updater: update μ′, μ″ from the gradients (needs ``router``).
        scope: ``"first"`` (first tower layer's weight, as the authors' code) or ``"all"``.
        conflict: rule for conflicting gradients: ``"project"``, ``"code"`` or ``"drop"``.
        scale: transfer factor rule ``"norm"``, ``"code"`` or a number.
        scale_min, scale_max: clip range of the ``norm`` / ``code`` factor (authors: 0.1, 5).
        route_aux: also route the shared-input branch's gradient g1″ into every auxiliary tower.
        mu_momentum: β of the support's moving average.
        mu_temperature: τ of the softmax giving μ.
    """

    has_weights = False

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        router: bool = True,
        updater: bool = True,
        scope: str = "first",
        conflict: str = "project",
        scale: str | float = "norm",
        scale_min: float = 0.1,
        scale_max: float = 5.0,
        route_aux: bool = False,
        mu_momentum: float = 0.9,
        mu_temperature: float = 1.0,
    ) -> None:
        from mtopt.models.drgrad import SCOPES, DRGradModel

        if not isinstance(model, DRGradModel):
            raise InputError(
                f"method.name: drgrad needs model.name: drgrad (its split-tower backbone), "
                f"got a {type(model).__name__}; set model.name: drgrad or pick another method"
            )
        super().__init__(model, optimizer)
        self.model: DRGradModel = model
        if scope not in SCOPES:
            raise InputError(f"method.scope: unknown scope {scope!r} (known: {', '.join(SCOPES)})")
        if conflict not in CONFLICT_RULES:
            raise InputError(
                f"method.conflict: unknown rule {conflict!r} (known: {', '.join(CONFLICT_RULES)})"
            )
        if isinstance(scale, str):
            if scale not in SCALE_RULES:
                raise InputError(
                    f"method.scale: unknown rule {scale!r} (known: norm, code, or a number)"
                )
        elif isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
            raise InputError(f"method.scale: a rule name or a number >= 0, got {scale!r}")
        if not 0 < float(scale_min) <= float(scale_max):
            raise InputError(
                f"method.scale_min/scale_max: need 0 < scale_min <= scale_max, "
                f"got {scale_min}, {scale_max}"
            )
        if not 0.0 <= float(mu_momentum) < 1.0:
            raise InputError(f"method.mu_momentum: must be in [0, 1), got {mu_momentum}")
        if not float(mu_temperature) > 0.0 or not math.isfinite(float(mu_temperature)):
            raise InputError(f"method.mu_temperature: must be > 0, got {mu_temperature}")
        if updater and not router:
            updater = False  # the updater reads the router's outputs
        self.router, self.updater = bool(router), bool(updater)
        # the router reads each process's own gradients before they could be averaged
        self.single_process_only = self.router
        self.scope, self.conflict, self.scale = scope, conflict, scale
        self.lo, self.hi = float(scale_min), float(scale_max)
        self.route_aux = bool(route_aux)
        self.mu_momentum, self.mu_temperature = float(mu_momentum), float(mu_temperature)
        self.s_bar = [0.0, 0.0]
        self.opt = make_torch_optimizer(list(model.parameters()), optimizer)

    def _route_step(self) -> dict[str, float]:
        m = self.model
        p_prime = m.tower_prime.route_parameters(self.scope)
        p_second = m.tower_second.route_parameters(self.scope)
        p_aux = [m.aux_tower(i).route_parameters(self.scope) for i in m.aux_tasks]
        g_prime, g_second = _flat(p_prime), _flat(p_second)
        g_aux = [_flat(ps) for ps in p_aux]
        kw: dict[str, Any] = {
            "conflict": self.conflict,
            "scale": self.scale,
            "lo": self.lo,
            "hi": self.hi,
        }
        r_prime, cos_prime = route(g_prime, g_aux, **kw)
        r_second, cos_second = route(g_second, g_aux, **kw)
        _write(p_prime, r_prime)
        _write(p_second, r_second)
        if self.route_aux:
            for ps, g in zip(p_aux, g_aux):
                _write(ps, route(g, [g_second], **kw)[0])
        extra: dict[str, float] = {}
        for i, cp, cs in zip(m.aux_tasks, cos_prime, cos_second):
            name = m.task_names[i]
            extra[f"cos_prime[{name}]"] = cp
            extra[f"cos_second[{name}]"] = cs
        s = [support(g_prime, r_prime), support(g_second, r_second)]
        extra["support_prime"], extra["support_second"] = s
        if self.updater:
            b = self.mu_momentum
            self.s_bar = [b * sb + (1.0 - b) * si for sb, si in zip(self.s_bar, s)]
            with torch.no_grad():
                m.mu.copy_(updater_mu(self.s_bar, self.mu_temperature).to(m.mu.dtype))
        return extra

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        """One backward of ``Σ Lᵢ``, route the tower gradients, update μ, one optimiser step."""
        self.opt.zero_grad(set_to_none=True)
        total = sum(1.0 * loss for loss in losses)
        total.backward()
        extra = self._route_step() if self.router else {}
        self.opt.step()
        extra["mu_prime"], extra["mu_second"] = (float(x) for x in self.model.mu)
        return StepInfo(
            loss=float(total.detach()),
            task_losses=[float(x.detach()) for x in losses],
            extra=extra,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "opt": self.opt.state_dict(),
            "s_bar": list(self.s_bar),
            "mu": self.model.mu.detach().clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])
        self.s_bar = [float(x) for x in state["s_bar"]]
        with torch.no_grad():
            self.model.mu.copy_(state["mu"])
