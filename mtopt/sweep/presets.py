"""The paper's experiments as named sweeps (:func:`experiment`, :func:`preset`) and sweeps
built from command-line style strings (:func:`custom_sweep`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from mtopt.errors import InputError
from mtopt.sweep.config import SIZES, SweepConfig
from mtopt.sweep.paper import PAPER_TABLE1, PAPER_TABLE3_ES, PAPER_TABLE4, PAPER_TABLE5
from mtopt.sweep.planning import resolve_recipe
from mtopt.sweep.spec import Spec, method_label, parse_specs

REGIMES = ["regime-low-conflict.yaml", "regime-high-conflict.yaml", "regime-imbalance.yaml"]


IMBALANCE = ["regime-imbalance.yaml"]


#: per size: overrides applied to every recipe (``standard`` = the recipes as shipped)
SIZE_OVERRIDES: dict[str, list[str]] = {
    # 30k training rows x 3 epochs of 1024 = 90 steps per run
    "quick": ["data.n_train=30000", "train.epochs=3"],
    "standard": [],
    # the PUB paper's set-up (VI-A): expert width 128, embeddings 16, towers 64, batch 4096,
    # lr 1e-3, 5 epochs, on 200k training rows (AliExpress_ES has 22.3M: use the real file)
    "full": [
        "data.n_train=200000",
        "data.n_val=50000",
        "data.n_test=50000",
        "model.expert_dim=128",
        "model.embed_dim=16",
        "model.tower_dims=[64]",
        "optimizer.batch_size=4096",
        "optimizer.lr=0.001",
        "train.epochs=5",
    ],
}


SEEDS = {"quick": [0, 1], "standard": [0, 1, 2, 3, 4], "full": [0, 1, 2, 3, 4]}


def _m(text: str, label: str | None = None) -> Spec:
    return Spec.parse(text, label)


def _table3(size: str) -> SweepConfig:
    if size == "quick":
        return SweepConfig(
            name="table3-quick",
            recipes=IMBALANCE,
            backbones=[_m("mmoe")],
            methods=[_m("ls"), _m("mgda"), _m("nashmtl"), _m("famo"), _m("pub")],
            seeds=SEEDS[size],
            overrides=SIZE_OVERRIDES[size],
            description=(
                "Table III analogue, quick preset: the 23x loss-imbalance synthetic regime "
                "(30k training rows, 3 epochs = 90 steps of 1024), MMoE, LS (the plain "
                "backbone) vs MGDA, NashMTL, FAMO and PUB (defaults: newton, solve every 1, "
                "frobenius α scale), 2 seeds. PUB's shared step is about n times Adam's at "
                "the same lr (docs/results.md, 'Is it the step size?')."
            ),
            paper=PAPER_TABLE3_ES,
        )
    methods = ["ls", "mgda", "nashmtl", "imtl_g", "pcgrad", "cagrad", "uncertainty", "famo", "pub"]
    if size == "full":
        methods += ["banditmtl", "clippy-adam", "adatask"]
    return SweepConfig(
        name=f"table3-{size}",
        recipes=REGIMES,
        backbones=[_m("mmoe"), _m("ple[expert_dim=64]" if size == "standard" else "ple")],
        methods=[_m(x) for x in methods],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        stl=True,
        description=(
            f"Table III analogue, {size} preset: the three synthetic regimes (low conflict, high "
            f"conflict, 23x loss imbalance{'' if size == 'standard' else ', paper-scale model'}"
            f"), STL, MMoE and PLE, methods {', '.join(methods)}, seeds {SEEDS[size]}. One "
            "learning rate for every method (the recipes' Adam lr unless --set "
            "optimizer.lr=...); PUB's shared step is about n times Adam's at the same lr, so "
            "compare at tuned learning rates too (docs/results.md, 'Is it the step size?')."
        ),
        paper=PAPER_TABLE3_ES,
    )


def _table4(size: str) -> SweepConfig:
    ple = "ple[expert_dim=64]" if size != "full" else "ple"
    return SweepConfig(
        name=f"table4-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe"), _m(ple, "PLE")],
        methods=[
            _m("ls"),
            _m("pub[solve_every=10]", "PUB"),
            _m("pub-clippy[solve_every=10]", "PUB+Clippy"),
            _m("pub-adatask[solve_every=10]", "PUB+AdaTask"),
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        description=(
            f"Table IV analogue, {size} preset: PUB alone and with the Clippy and AdaTask UMMs "
            "(α solved every 10 steps, as in the paper) vs the plain MMoE and PLE, on the 23x "
            f"loss-imbalance regime, seeds {SEEDS[size]}."
        ),
        paper=PAPER_TABLE4,
    )


def _ablations(size: str) -> SweepConfig:
    return SweepConfig(
        name=f"ablations-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe")],
        methods=[
            _m("ls"),
            _m("pub[alpha_scale=frobenius,solve_every=1]", "PUB frobenius k=1"),
            _m("pub[alpha_scale=exact,solve_every=1]", "PUB exact k=1"),
            _m("pub[alpha_scale=frobenius,solve_every=10]", "PUB frobenius k=10"),
            _m("pub[alpha_scale=frobenius,solve_every=100]", "PUB frobenius k=100"),
            _m("pub[fixed_alpha=1]", "PUB α=1"),
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        description=(
            f"PUB ablations, {size} preset, 23x loss-imbalance regime, MMoE: α scale exact vs "
            "frobenius, solving every k = 1 / 10 / 100 steps, and α fixed at 1 (the sum of the "
            "per-task updates: what PUB does when its solver silently fails). ‡ compares with "
            f"the plain backbone (LS). Seeds {SEEDS[size]}."
        ),
    )


def _table5(size: str) -> SweepConfig:
    over = list(SIZE_OVERRIDES[size]) + ["train.eval_every=1000000000"]
    if size == "quick":
        over += ["train.epochs=2"]
    return SweepConfig(
        name=f"table5-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe"), _m("ple[expert_dim=64]" if size != "full" else "ple", "PLE")],
        methods=[
            _m("ls", "Base"),
            _m("nashmtl", "NashMTL"),
            _m("nashmtl[update_weights_every=10]", "NashMTL k=10"),
            _m("pub[solve_every=1]", "PUB k=1"),
            _m("pub[solve_every=10]", "PUB k=10"),
            _m("pub[solve_every=10,between_solves=weighted]", "PUB k=10 weighted"),
        ],
        seeds=[0, 1, 2] if size != "full" else SEEDS[size],
        overrides=over,
        kind="timing",
        baseline="Base",
        description=(
            f"Table V analogue, {size} preset: seconds per training epoch of the plain backbone "
            "(LS), NashMTL (solving every step, and every 10) and PUB (every step, every 10, and "
            "every 10 with one backward between solves) on the same data; each row is the mean "
            "of one run per seed (seeds "
            f"{[0, 1, 2] if size != 'full' else SEEDS[size]}: single timings vary by ~20% on "
            "a shared machine), one run at a time, one thread."
        ),
        paper=PAPER_TABLE5,
    )


def _weighted(size: str) -> SweepConfig:
    ple = "ple[expert_dim=64]" if size != "full" else "ple"
    return SweepConfig(
        name=f"weighted-{size}",
        recipes=REGIMES,
        backbones=[_m("mmoe"), _m(ple, "PLE")],
        methods=[
            _m("pub[solve_every=10]", "PUB k=10"),
            _m("pub[solve_every=10,between_solves=weighted]", "PUB k=10 weighted"),
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        baseline="PUB k=10",
        description=(
            f"PUB's one-backward step between solves, {size} preset: PUB solving every 10 steps "
            "with the per-task path (Algorithm 1) vs between_solves=weighted (an approximation, "
            "docs/pub.md), three synthetic regimes × MMoE and PLE, seeds "
            f"{SEEDS[size]}; ‡ marks a difference from the per-task PUB. Compare run by run "
            "with `mtopt paired RESULTS 'PUB k=10 weighted' 'PUB k=10'`."
        ),
    )


def _table1(size: str) -> SweepConfig:
    quick = size == "quick"
    return SweepConfig(
        name=f"table1-{size}",
        recipes=IMBALANCE if quick else REGIMES,
        backbones=(
            [_m("mmoe")]
            if quick
            else [
                _m("shared-bottom"),
                _m("mmoe"),
                _m("ple[expert_dim=64]" if size != "full" else "ple", "PLE"),
            ]
        ),
        methods=[_m("ls"), _m("mgda"), _m("imtl_g"), _m("nashmtl"), _m("pub")],
        seeds=SEEDS["quick"] if quick else [0, 1, 2],  # the paper's Table I: 3 seeds
        overrides=SIZE_OVERRIDES[size],
        kind="diagnostics",
        description=(
            f"Table I / §III analogue, {size} preset: cosine of gradient vs update on "
            "task-specific and shared parameters at every step for LS, MGDA, IMTL-G, NashMTL "
            "and PUB"
            + (" on MMoE, 23x imbalance regime" if quick else " on 3 backbones x 3 regimes")
            + "."
        ),
        paper=PAPER_TABLE1,
    )


def _solvers(size: str) -> SweepConfig:
    return SweepConfig(
        name=f"solvers-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe")],
        methods=[
            _m(f"pub[solver={s},solve_every=1]", s)
            for s in ("newton", "ccp", "ccp-raw", "fixed-point", "closed-form")
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        kind="solvers",
        baseline="newton",
        description=(
            f"α solver backends vs training outcome, {size} preset: PUB on MMoE, 23x imbalance "
            "regime, solving every step (frobenius α scale) with each backend, seeds "
            f"{SEEDS[size]}."
        ),
    )


#: experiment name -> (one-line description, builder(size) -> SweepConfig)
EXPERIMENTS: dict[str, tuple[str, Callable[[str], SweepConfig]]] = {
    "table3": ("Table III: methods x backbones, test AUC, Welch marks", _table3),
    "table4": ("Table IV: PUB, PUB+Clippy, PUB+AdaTask vs MMoE / PLE", _table4),
    "ablations": ("PUB ablations: alpha scale, solve every 1/10/100, alpha = 1", _ablations),
    "table5": ("Table V: seconds per epoch, base vs NashMTL vs PUB", _table5),
    "table1": ("Table I / Sec. III: cos(gradient, update), Diff", _table1),
    "weighted": ("PUB k=10: per-task vs one backward between solves", _weighted),
    "solvers": ("Solver backends vs training outcome", _solvers),
}


def experiment(name: str, size: str = "quick") -> SweepConfig:
    """The :class:`SweepConfig` of a named experiment at a size (quick, standard, full)."""
    if size not in SIZES:
        raise InputError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    key = name.strip().lower().replace("_", "")
    if key not in EXPERIMENTS:
        raise InputError(f"experiment {name!r}: unknown (known: {', '.join(EXPERIMENTS)}, all)")
    return EXPERIMENTS[key][1](size)


def preset(name: str) -> SweepConfig:
    """``quick`` / ``standard`` / ``full`` (Table III) or ``<experiment>-<size>``."""
    n = name.strip().lower()
    if n in SIZES:
        return experiment("table3", n)
    exp, _, size = n.rpartition("-")
    if exp and size in SIZES:
        return experiment(exp, size)
    if n in EXPERIMENTS:
        return experiment(n, "quick")
    known = [*SIZES, *(f"{e}-{s}" for e in EXPERIMENTS for s in SIZES)]
    raise InputError(f"preset: {name!r} is unknown (known: {', '.join(known)})")


def custom_sweep(
    recipes: Sequence[str],
    methods: str | Sequence[str],
    backbones: str | Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1),
    overrides: Sequence[str] = (),
    *,
    name: str = "sweep",
    kind: str = "auc",
    baseline: str | None = None,
    stl: bool = False,
) -> SweepConfig:
    """A :class:`SweepConfig` from command-line style strings.

    ``backbones=None`` uses each recipe's own backbone (the first recipe's, when they differ
    the first one's is used for all). The baseline defaults to ``LS`` when ``ls`` is among the
    methods, else the first method.
    """
    ms = parse_specs(methods)
    if backbones is None:
        from mtopt.config import read_recipe_file

        first = resolve_recipe(recipes[0])
        bname = (read_recipe_file(first).get("model") or {}).get("name", "mmoe")
        bs = [Spec(bname)]
    else:
        bs = parse_specs(backbones)
    labels = [method_label(m) for m in ms]
    if baseline is None:
        baseline = "LS" if "LS" in labels else labels[0]
    elif baseline not in labels:
        try:
            baseline = method_label(Spec.parse(baseline))
        except InputError:
            pass
        if baseline not in labels:
            raise InputError(f"baseline: {baseline!r} is not among the methods ({labels})")
    return SweepConfig(
        name=name,
        recipes=list(recipes),
        backbones=bs,
        methods=ms,
        seeds=[int(s) for s in seeds],
        overrides=list(overrides),
        kind=kind,
        baseline=baseline,
        stl=stl,
    )


def replace_seeds(config: SweepConfig, seeds: Sequence[int]) -> SweepConfig:
    """A copy of ``config`` with other seeds."""
    return replace(config, seeds=[int(s) for s in seeds])
