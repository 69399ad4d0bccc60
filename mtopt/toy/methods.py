"""The toy's methods: names, their hyperparameters (the authors' toy code) and one stepper per
method (``x``, ``step()``, ``stats()``); see the :mod:`mtopt.toy` docstring."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mtopt.errors import InputError
from mtopt.names import normalize
from mtopt.toy.problem import value_and_grad

#: canonical method name -> display name
METHODS: dict[str, str] = {
    "ls": "LS",
    "mgda": "MGDA",
    "pcgrad": "PCGrad",
    "cagrad": "CAGrad",
    "imtl_g": "IMTL-G",
    "nashmtl": "Nash-MTL",
    "famo": "FAMO",
    "pub_exact": "PUB (exact α)",
    "pub_frobenius": "PUB (frobenius α)",
}
#: opt-in methods (``--methods``; not in the default set, whose outputs stay as they were):
#: the weightings of issue #17 at the gradient level and, as ``pub_<weighting>``, on PUB's
#: updates (frobenius α, :class:`mtopt.optim.PUB` ``weighting=...``)
EXTRA_METHODS: dict[str, str] = {
    "upgrad": "UPGrad",
    "aligned_mtl": "Aligned-MTL",
    "fairgrad": "FairGrad",
    **{f"pub_{w}": f"PUB[{w}]" for w in
       ("mgda", "imtl_g", "cagrad", "upgrad", "aligned_mtl", "fairgrad")},
}  # fmt: skip
#: display names of every toy method
LABELS: dict[str, str] = METHODS | EXTRA_METHODS
#: aggregator hyperparameters of the gradient-level methods (the authors' toy defaults)
AGGREGATOR_HP: dict[str, dict[str, Any]] = {
    "mgda": {"normalization": "none"},
    "pcgrad": {"reduction": "sum"},
    "cagrad": {"c": 0.4, "rescale": 1},
    "imtl_g": {},
    "nashmtl": {"max_norm": 1.0},
    "upgrad": {},
    "aligned_mtl": {},
    "fairgrad": {},
}
#: FAMO's hyperparameters in the FAMO authors' toy run
FAMO_HP: dict[str, float] = {"gamma": 0.0, "w_lr": 0.025, "max_norm": 1.0}
#: FAMO's loss lower bounds in the FAMO authors' toy run, times (SCALE, 1)
FAMO_MIN_LOSS = -21.0

_ALIASES = {normalize(k): k for k in LABELS} | {
    "imtl": "imtl_g",
    "nash": "nashmtl",
    "pubexact": "pub_exact",
    "pubfrobenius": "pub_frobenius",
}


def resolve_methods(names: Sequence[str] | None) -> list[str]:
    """Canonical method names (``None``: all of them; ``pub`` expands to both α scales)."""
    if names is None:
        return list(METHODS)
    out: list[str] = []
    for raw in names:
        key = normalize(raw)
        found = ["pub_exact", "pub_frobenius"] if key == "pub" else [_ALIASES.get(key, "")]
        if not found[0]:
            raise InputError(
                f"methods: unknown method {raw!r} (known: {', '.join(LABELS)}, pub = both)"
            )
        out += [m for m in found if m not in out]
    if not out:
        raise InputError(
            f"methods: give at least one method (known: {', '.join(LABELS)}, pub = both)"
        )
    return out


class _ToyModel:
    """Factory of the :class:`~mtopt.models.base.MultiTaskModel` adapter FAMO expects."""

    @staticmethod
    def make(x0: Sequence[float]) -> Any:
        import torch

        from mtopt.models.base import MultiTaskModel

        class ToyModel(MultiTaskModel):
            """Two tasks sharing one parameter ``x ∈ R²`` (no task-specific parameters)."""

            def __init__(self) -> None:
                super().__init__()
                self.n_tasks = 2
                self.task_names = ["L1", "L2"]
                self.x = torch.nn.Parameter(torch.tensor(list(x0), dtype=torch.float32))

            def shared_parameters(self) -> list[torch.nn.Parameter]:
                return [self.x]

            def task_parameters(self, i: int) -> list[torch.nn.Parameter]:
                return []

            def forward(self, batch: dict) -> torch.Tensor:  # pragma: no cover - unused
                raise NotImplementedError("the toy model has no batches")

        return ToyModel()


def _stepper(
    method: str, x0: Sequence[float], lr: float, seed: int, scale: float
) -> tuple[Any, Callable[[], None], Callable[[], dict[str, Any]]]:
    """``(x, step, stats)`` for one run: ``x`` the float32 parameter, ``step()`` one step."""
    import torch

    model = None
    if method == "famo":
        model = _ToyModel.make(x0)
        x = model.x
    else:
        x = torch.tensor([float(v) for v in x0], dtype=torch.float32, requires_grad=True)
    Jnp = np.zeros((2, 2), dtype=np.float32)
    J = torch.from_numpy(Jnp)  # shares memory with Jnp: row i = ∇Lᵢ at the current x
    fvals = np.zeros(2, dtype=np.float32)
    F = torch.from_numpy(fvals)

    def grads() -> None:
        u, y = x.detach().tolist()
        f1, f2, a, b, c, d = value_and_grad(u, y, scale)
        fvals[0], fvals[1] = f1, f2
        Jnp[0, 0], Jnp[0, 1], Jnp[1, 0], Jnp[1, 1] = a, b, c, d

    def surrogate_losses() -> list[Any]:
        # value Lᵢ(x₀) and gradient gᵢ at x₀ = the current point (see the module docstring)
        lin = torch.mv(J.clone(), x - x.detach()) + F.clone()
        return [lin[0], lin[1]]

    if method == "famo":
        from mtopt.methods.base import OptimizerConfig
        from mtopt.methods.loss.famo import FAMO

        cfg = OptimizerConfig(name="adam", lr=lr, weight_decay=0.0)
        famo = FAMO(model, cfg, seed=seed, **FAMO_HP)  # type: ignore[arg-type]
        famo.min_losses = torch.tensor([FAMO_MIN_LOSS * scale, FAMO_MIN_LOSS], dtype=torch.float64)
        last: dict[str, Any] = {}

        def famo_step() -> None:
            grads()
            # no closure: FAMO updates its logits at the next step from that step's losses,
            # as the FAMO authors' toy loop does (same values here: the problem is deterministic)
            last["weights"] = famo.step(surrogate_losses()).weights

        return x, famo_step, lambda: {"final_weights": last.get("weights")}

    if method.startswith("pub_"):
        from mtopt.optim import PUB

        kind = method.split("_", 1)[1]
        if kind in ("exact", "frobenius"):
            pub = PUB([x], [[], []], lr=lr, base="adam", alpha_scale=kind)
        else:
            pub = PUB([x], [[], []], lr=lr, base="adam", weighting=kind)

        def pub_step() -> None:
            grads()
            pub.step(surrogate_losses())

        def pub_stats() -> dict[str, Any]:
            return {**pub.stats, "final_alpha": pub.last.alpha}

        return x, pub_step, pub_stats

    if method != "ls" and method not in AGGREGATOR_HP:
        raise InputError(f"method: unknown toy method {method!r} (known: {', '.join(LABELS)})")
    opt = torch.optim.Adam([x], lr=lr)
    stats: Callable[[], dict[str, Any]] = dict
    if method == "ls":

        def direction() -> Any:
            return J.sum(0)

    elif method == "nashmtl":
        from mtopt.methods.aggregators import get_aggregator
        from mtopt.methods.linalg import combine, gram64

        agg = get_aggregator(method, **AGGREGATOR_HP[method])
        # the training method's policy (mtopt.methods.grad.nashmtl.NashMTL): Balance solving
        # every step, warm-started, keeping the last α when a solve gives none it can trust
        balance = agg.new_balance(fallback="previous", warm_start=True)  # type: ignore[attr-defined]

        def direction() -> Any:
            alpha, _ = balance.weights(lambda: gram64(J))
            if alpha is None:  # no α yet (Pareto-stationary start): no move
                return torch.zeros_like(J[0])
            return agg.clip(combine(alpha, J))  # type: ignore[attr-defined]

        def nash_stats() -> dict[str, Any]:
            return {"fallbacks": balance.counts["fallbacks"]}

        stats = nash_stats

    else:
        from mtopt.methods.aggregators import get_aggregator

        agg = get_aggregator(method, **AGGREGATOR_HP[method])
        gen = torch.Generator().manual_seed(seed)

        def direction() -> Any:
            return agg(J, generator=gen)[0]

    def grad_step() -> None:
        grads()
        x.grad = direction()
        opt.step()

    return x, grad_step, stats
