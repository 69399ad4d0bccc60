"""The paper's question under the tuning protocol, as a named experiment of ``mtopt reproduce``:
LS, NashMTL, PUB and PUB with α fixed at 1, each with its own tuned learning rate, on the three
synthetic regimes × MMoE and PLE, STL for Δm% (:data:`TUNE_EXPERIMENTS`)."""

from __future__ import annotations

from collections.abc import Callable

from mtopt.errors import InputError
from mtopt.sweep import REGIMES, SEEDS, SIZE_OVERRIDES, SIZES, Spec
from mtopt.tune.config import TuneConfig

#: per size: (extra overrides, PLE spec, learning rates: range and grid points)
_SIZE = {
    # 8k training rows x 2 epochs of 512 = 32 steps, val/test 20k rows, narrow experts: one
    # run takes a few seconds on one core
    "quick": (
        [
            "data.n_train=8000",
            "data.n_val=20000",
            "data.n_test=20000",
            "optimizer.batch_size=512",
            "train.epochs=2",
            "model.expert_dim=16",
        ],
        "ple[expert_dim=16]",
        ("1e-3..3e-2", 5),
    ),
    "standard": (SIZE_OVERRIDES["standard"], "ple[expert_dim=64]", ("1e-3..3e-2", 6)),
    "full": (SIZE_OVERRIDES["full"], "ple", ("1e-4..1e-2", 6)),
}


def _pub_question(size: str) -> TuneConfig:
    over, ple, (lr, points) = _SIZE[size]
    return TuneConfig(
        name=f"tuned-{size}",
        recipes=list(REGIMES),
        backbones=[Spec.parse("mmoe"), Spec.parse(ple, "PLE")],
        methods=[
            Spec.parse("ls"),
            Spec.parse("nashmtl"),
            Spec.parse("pub"),
            Spec.parse("pub[fixed_alpha=1]", "PUB α=1"),
        ],
        lr=lr,
        n_trials=points,
        sampler="grid",  # every method tries the same learning rates: the fairest budget
        grid_points=points,
        tune_seeds=[0],
        test_seeds=SEEDS["standard"],  # 5 seeds at every size: the intervals need them
        overrides=list(over),
        stl=True,
        description=(
            f"The paper's question under equal tuning, {size} preset: LS (the plain backbone), "
            "NashMTL, PUB and PUB with α fixed at 1 (the sum of the per-task updates), each "
            f"with its own learning rate (the best of the same {points} log-spaced rates in "
            f"{lr} on validation), on the three synthetic regimes × MMoE and PLE, STL for Δm%."
        ),
    )


#: name -> (one-line description, builder(size) -> TuneConfig)
TUNE_EXPERIMENTS: dict[str, tuple[str, Callable[[str], TuneConfig]]] = {
    "tuned": (
        "LS, NashMTL, PUB, PUB alpha=1 at tuned learning rates (needs mtopt[tune])",
        _pub_question,
    ),
}


def tune_experiment(name: str, size: str = "quick") -> TuneConfig:
    """The :class:`TuneConfig` of a named tuning experiment at a size."""
    if size not in SIZES:
        raise InputError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    key = name.strip().lower()
    if key not in TUNE_EXPERIMENTS:
        raise InputError(f"experiment {name!r}: unknown (known: {', '.join(TUNE_EXPERIMENTS)})")
    return TUNE_EXPERIMENTS[key][1](size)
