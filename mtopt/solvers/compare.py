"""Library logic of ``mtopt compare-solvers``: seeded scenarios, runs, summary, files, plots.

Every registered solver backend (plugins included) is run on the same seeded Gram matrices.
Per (scenario, n) cell each backend runs over all its instances back to back (warm caches, as
in a training loop that calls one solver), and the backends alternate cell by cell within a
few seconds at most, so slow drifts of load on a shared machine affect them alike.
``seconds`` is each backend's own ``SolveResult.seconds``: the time to compute α,
excluding input validation, one-time compilation and the final certificate, which
:func:`mtopt.solvers.solve` computes identically for every backend.

Scenarios (slugs), each a ``D`` (d × n, one column per task) with ``G = DᵀD`` in float64:

* ``random``: i.i.d. Gaussian columns.
* ``correlated``: a shared component, pairwise cosines around 0.3–0.9.
* ``conflicting``: disjoint pairs of columns with cosine in (−0.95, −0.55); for n ≥ 3 the
  other pairs are random (PSD forbids every pair having cos < −½, DESIGN §2.5).
* ``ill-conditioned``: random columns rescaled to norms spanning 1e-4 … 1e4.
* ``near-duplicate``: one column is another plus a relative perturbation of 1e-8 … 1e-4.
* ``opposite`` (degenerate): one column is exactly −c times another, so 0 is in the convex hull
  of the columns and no α exists; the correct outcome is ``pareto_stationary``.

A row *fails* when its status is not the expected one (``ok``; ``pareto_stationary`` for
``opposite``) or the backend raised (status ``error``; the exception text is kept in the
summary). Nothing is swallowed silently.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.errors import InputError

SCENARIOS = (
    "random",
    "correlated",
    "conflicting",
    "ill-conditioned",
    "near-duplicate",
    "opposite",
)
DEGENERATE = frozenset({"opposite"})
REFERENCE = "ccp"
ROW_KEYS = ("solver", "scenario", "n", "instance", "seconds", "residual", "status", "iterations")


def _rows_of(n: int) -> int:
    return max(4 * n, 32)


def make_updates(scenario: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """One seeded update matrix ``D`` (d × n) of ``scenario``."""
    d = _rows_of(n)
    D = rng.standard_normal((d, n))
    if scenario == "random":
        pass
    elif scenario == "correlated":
        rho = rng.uniform(0.55, 0.95)
        z = rng.standard_normal((d, 1))
        D = rho * z + math.sqrt(1 - rho**2) * D
    elif scenario == "conflicting":
        for i in range(0, n - 1, 2):
            target = rng.uniform(-0.95, -0.55)
            a = D[:, i] / np.linalg.norm(D[:, i])
            e = D[:, i + 1] - (D[:, i + 1] @ a) * a
            e /= np.linalg.norm(e)
            D[:, i + 1] = target * a + math.sqrt(1 - target**2) * e
    elif scenario == "ill-conditioned":
        exps = rng.uniform(-4.0, 4.0, size=n)
        exps[0], exps[-1] = -4.0, 4.0
        D = D * 10.0**exps
    elif scenario == "near-duplicate":
        if n >= 2:
            eps = 10.0 ** rng.uniform(-8.0, -4.0)
            noise = rng.standard_normal(d)
            D[:, 1] = D[:, 0] + eps * np.linalg.norm(D[:, 0]) * noise / np.linalg.norm(noise)
    elif scenario == "opposite":
        if n >= 2:
            D[:, 1] = -rng.uniform(0.1, 10.0) * D[:, 0]
    else:
        raise InputError(
            f"--scenarios: unknown scenario {scenario!r}; pick from {', '.join(SCENARIOS)}"
        )
    return D


def make_gram(scenario: str, n: int, seed: int, instance: int) -> np.ndarray:
    """The seeded ``G = DᵀD`` (float64) for one (scenario, n, instance)."""
    if scenario not in SCENARIOS:
        raise InputError(
            f"--scenarios: unknown scenario {scenario!r}; pick from {', '.join(SCENARIOS)}"
        )
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario), n, instance])
    D = make_updates(scenario, n, rng)
    return D.T @ D


@dataclass
class CompareConfig:
    """What to run. ``heavy_instances`` caps instances for backends registered ``heavy``."""

    ns: Sequence[int] = (2, 3, 5, 10)
    instances: int = 100
    heavy_instances: int = 30
    scenarios: Sequence[str] = SCENARIOS
    seed: int = 0
    solvers: Sequence[str] | None = None
    tol: float = 1e-6

    def check(self) -> None:
        """Raise :class:`InputError` for values that cannot run."""
        if not self.ns or any(int(n) < 1 for n in self.ns):
            raise InputError("--n: give task counts >= 1, e.g. --n 2,3,5,10")
        if self.instances < 1:
            raise InputError("--instances: must be >= 1")
        if self.heavy_instances < 1:
            raise InputError("--cvxpy-instances: must be >= 1")
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise InputError(
                    f"--scenarios: unknown scenario {s!r}; pick from {', '.join(SCENARIOS)}"
                )
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise InputError("--tol: must be a positive finite number")


@dataclass
class Backend:
    """A registered solver as compare-solvers sees it."""

    name: str
    source: str
    heavy: bool
    min_n: int
    max_n: int | None

    def accepts(self, n: int) -> bool:
        return n >= self.min_n and (self.max_n is None or n <= self.max_n)


def backends(names: Sequence[str] | None = None) -> list[Backend]:
    """Registered solvers (plugins included), optionally restricted to ``names``."""
    from mtopt.registry import registry

    entries = registry.entries("solver")
    if names:
        entries = [registry.entry("solver", nm) for nm in names]
    out = []
    for e in entries:
        out.append(
            Backend(
                e.name,
                e.source,
                bool(e.meta.get("heavy", False)),
                int(e.meta.get("min_n", 1)),
                None if e.meta.get("max_n") is None else int(e.meta["max_n"]),
            )
        )
    return out


@dataclass
class CompareRun:
    """Rows plus the notes (skips, errors, compile times) of one comparison."""

    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    compile_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    backends: list[Backend] = field(default_factory=list)
    config: CompareConfig | None = None


def run(
    config: CompareConfig,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> CompareRun:
    """Run every backend on every instance; ``progress(k)`` is called after k solves."""
    from mtopt.solvers.base import solve

    config.check()
    bks = backends(config.solvers)
    out = CompareRun(rows=[], backends=bks, config=config)
    t_start = time.perf_counter()
    ns = [int(n) for n in config.ns]
    for b in bks:
        skipped = [n for n in ns if not b.accepts(n)]
        if skipped:
            rng_txt = f"n = {b.min_n}" if b.max_n == b.min_n else f"n in [{b.min_n}, {b.max_n}]"
            out.notes.append(
                f"{b.name}: skipped for n = {', '.join(map(str, skipped))} (accepts {rng_txt})"
            )
        if b.heavy and config.heavy_instances < config.instances:
            out.notes.append(
                f"{b.name}: CVXPY backend, run on the first {config.heavy_instances} of "
                f"{config.instances} instances per (scenario, n)"
            )
    total = 0
    for n in ns:
        for _ in config.scenarios:
            for b in bks:
                if b.accepts(n):
                    total += min(config.instances, config.heavy_instances if b.heavy else 10**9)
    if on_total is not None:
        on_total(total)
    refused: set[tuple[str, int]] = set()
    for n in ns:
        for scenario in config.scenarios:
            grams = [make_gram(scenario, n, config.seed, k) for k in range(config.instances)]
            for b in bks:
                for k, G in enumerate(grams):
                    if not b.accepts(n) or (b.heavy and k >= config.heavy_instances):
                        continue
                    row: dict[str, Any] = {
                        "solver": b.name,
                        "scenario": scenario,
                        "n": n,
                        "instance": k,
                    }
                    if (b.name, n) in refused:
                        continue
                    try:
                        res = solve(G, b.name, tol=config.tol, **_options(b))
                    except InputError as exc:
                        if k == 0:  # a backend without min_n/max_n meta refusing this n
                            refused.add((b.name, n))
                            out.notes.append(f"{b.name}: skipped for n = {n} ({exc})")
                            continue
                        key = f"{b.name}/{scenario}/n={n}"
                        out.errors.setdefault(key, f"{type(exc).__name__}: {exc}")
                        row.update(seconds=None, residual=None, status="error", iterations=None)
                    except Exception as exc:  # recorded as a failure row, never hidden
                        key = f"{b.name}/{scenario}/n={n}"
                        out.errors.setdefault(key, f"{type(exc).__name__}: {exc}")
                        row.update(seconds=None, residual=None, status="error", iterations=None)
                    else:
                        if res.compile_seconds:
                            out.compile_seconds[f"{b.name} n={n}"] = (
                                out.compile_seconds.get(f"{b.name} n={n}", 0.0)
                                + res.compile_seconds
                            )
                        row.update(
                            seconds=float(res.seconds),
                            residual=None if res.residual is None else float(res.residual),
                            status=res.status,
                            iterations=int(res.iterations),
                        )
                    out.rows.append(row)
                    if progress is not None:
                        progress(1)
    out.wall_seconds = time.perf_counter() - t_start
    return out


def _options(b: Backend) -> dict[str, Any]:
    # CCP cold starts (from 1, like newton): independent instances make a warm start from the
    # previous instance meaningless; in PUB both ccp and newton may be warm-started.
    if b.name in ("ccp", "ccp-raw") and b.source == "mtopt":
        return {"warm_start": False}
    return {}


def expected_status(scenario: str) -> str:
    """The correct outcome for a scenario."""
    return "pareto_stationary" if scenario in DEGENERATE else "ok"


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


@dataclass
class Summary:
    """Aggregates of a :class:`CompareRun` (plain dicts, ready for JSON or markdown)."""

    by_n: list[dict[str, Any]]
    by_scenario: list[dict[str, Any]]
    versus_newton: list[dict[str, Any]]


def summarize(result: CompareRun) -> Summary:
    """Per (solver, n) over the non-degenerate scenarios; per (solver, scenario); newton vs
    the CVXPY backends on the instances both ran."""
    rows = result.rows
    solvers = [b.name for b in result.backends]
    ns = sorted({r["n"] for r in rows})
    scen = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]

    def med_time(
        name: str, n: int, instances: set[int] | None = None, q: float = 50
    ) -> float | None:
        ts = [
            r["seconds"]
            for r in rows
            if r["solver"] == name
            and r["n"] == n
            and r["scenario"] not in DEGENERATE
            and r["seconds"] is not None
            and (instances is None or r["instance"] in instances)
        ]
        return float(np.percentile(ts, q)) if ts else None

    def instance_set(name: str, n: int) -> set[int]:
        return {r["instance"] for r in rows if r["solver"] == name and r["n"] == n}

    by_n = []
    for name in solvers:
        for n in ns:
            sel = [
                r
                for r in rows
                if r["solver"] == name and r["n"] == n and r["scenario"] not in DEGENERATE
            ]
            if not sel:
                continue
            ts = [r["seconds"] for r in sel if r["seconds"] is not None]
            rs = [r["residual"] for r in sel if r["residual"] is not None]
            fails = sum(r["status"] != "ok" for r in sel)
            ratio = None
            if name != REFERENCE and REFERENCE in solvers:
                common = instance_set(name, n) & instance_set(REFERENCE, n)
                a, b = med_time(REFERENCE, n, common), med_time(name, n, common)
                ratio = a / b if a and b else None
            elif name == REFERENCE:
                ratio = 1.0
            by_n.append(
                {
                    "solver": name,
                    "n": n,
                    "rows": len(sel),
                    "median_seconds": _pct(ts, 50),
                    "p90_seconds": _pct(ts, 90),
                    "median_residual": _pct(rs, 50),
                    "max_residual": max(rs) if rs else None,
                    "failure_rate": fails / len(sel),
                    "speed_ratio_vs_ccp": ratio,
                }
            )
    by_scenario = []
    for name in solvers:
        for s in scen:
            sel = [r for r in rows if r["solver"] == name and r["scenario"] == s]
            if not sel:
                continue
            rs = [r["residual"] for r in sel if r["residual"] is not None]
            ts = [r["seconds"] for r in sel if r["seconds"] is not None]
            exp = expected_status(s)
            by_scenario.append(
                {
                    "solver": name,
                    "scenario": s,
                    "rows": len(sel),
                    "failure_rate": sum(r["status"] != exp for r in sel) / len(sel),
                    "statuses": {
                        st: sum(r["status"] == st for r in sel)
                        for st in ("ok", "not_converged", "pareto_stationary", "error")
                        if any(r["status"] == st for r in sel)
                    },
                    "median_seconds": _pct(ts, 50),
                    "max_residual": max(rs) if rs else None,
                }
            )
    versus = []
    if "newton" in solvers:
        for n in ns:
            entry: dict[str, Any] = {
                "n": n,
                "newton_median_seconds": med_time("newton", n),
                "newton_p10_seconds": med_time("newton", n, q=10),
            }
            for other in ("ccp", "ccp-raw"):
                if other not in solvers:
                    continue
                common = instance_set("newton", n) & instance_set(other, n)
                a, b = med_time(other, n, common), med_time("newton", n, common)
                entry[f"{other}_median_seconds"] = a
                entry[f"{other}_over_newton"] = a / b if a and b else None
                a, b = med_time(other, n, common, 10), med_time("newton", n, common, 10)
                entry[f"{other}_p10_seconds"] = a
                entry[f"{other}_over_newton_p10"] = a / b if a and b else None
            versus.append(entry)
    return Summary(by_n, by_scenario, versus)


def _fmt_time(x: float | None) -> str:
    if x is None:
        return "–"
    if x < 1e-3:
        return f"{x * 1e6:.1f} µs"
    if x < 1:
        return f"{x * 1e3:.2f} ms"
    return f"{x:.2f} s"


def _fmt_num(x: float | None, spec: str = ".1e") -> str:
    return "–" if x is None else format(x, spec)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def format_summary(result: CompareRun, summary: Summary, full: bool = True) -> str:
    """Markdown tables (the printed table is the first two; ``full`` adds the rest)."""
    cfg = result.config or CompareConfig()
    parts = [
        "## Time and residual per backend and n (all scenarios but `opposite`)",
        "",
        _table(
            [
                "solver",
                "n",
                "rows",
                "median time",
                "p90 time",
                "median residual",
                "max residual",
                "failure rate",
                "speed × vs ccp",
            ],
            (
                [
                    e["solver"],
                    str(e["n"]),
                    str(e["rows"]),
                    _fmt_time(e["median_seconds"]),
                    _fmt_time(e["p90_seconds"]),
                    _fmt_num(e["median_residual"]),
                    _fmt_num(e["max_residual"]),
                    f"{e['failure_rate']:.1%}",
                    _fmt_num(e["speed_ratio_vs_ccp"], ".1f"),
                ]
                for e in summary.by_n
            ),
        ),
        "",
        "## Failure rate per backend and scenario (expected: `ok`; `pareto_stationary` for "
        "`opposite`)",
        "",
    ]
    scen = [s for s in SCENARIOS if any(e["scenario"] == s for e in summary.by_scenario)]
    names = list(dict.fromkeys(e["solver"] for e in summary.by_scenario))
    look = {(e["solver"], e["scenario"]): e for e in summary.by_scenario}
    parts.append(
        _table(
            ["solver", *scen],
            (
                [nm]
                + [
                    "–" if (nm, s) not in look else f"{look[(nm, s)]['failure_rate']:.1%}"
                    for s in scen
                ]
                for nm in names
            ),
        )
    )
    if summary.versus_newton:
        parts += [
            "",
            "## newton vs the CVXPY CCP (median over the instances both ran, "
            "all scenarios but `opposite`)",
            "",
            _table(
                [
                    "n",
                    "newton",
                    "ccp",
                    "ccp / newton",
                    "ccp-raw",
                    "ccp-raw / newton",
                    "p10: newton",
                    "ccp",
                    "ccp / newton",
                    "ccp-raw / newton",
                ],
                (
                    [
                        str(e["n"]),
                        _fmt_time(e["newton_median_seconds"]),
                        _fmt_time(e.get("ccp_median_seconds")),
                        _fmt_num(e.get("ccp_over_newton"), ".1f"),
                        _fmt_time(e.get("ccp-raw_median_seconds")),
                        _fmt_num(e.get("ccp-raw_over_newton"), ".1f"),
                        _fmt_time(e["newton_p10_seconds"]),
                        _fmt_time(e.get("ccp_p10_seconds")),
                        _fmt_num(e.get("ccp_over_newton_p10"), ".1f"),
                        _fmt_num(e.get("ccp-raw_over_newton_p10"), ".1f"),
                    ]
                    for e in summary.versus_newton
                ),
            ),
            "",
            "The 10th percentiles are less sensitive to preemption on a shared machine (a "
            "millisecond CVXPY solve is interrupted far more often than a microsecond one).",
        ]
    if result.notes:
        parts += ["", "Notes:", *[f"- {x}" for x in result.notes]]
    if result.errors:
        parts += ["", "Backend exceptions (rows with status `error`):"]
        parts += [f"- {k}: {v}" for k, v in result.errors.items()]
    if not full:
        return "\n".join(parts) + "\n"
    parts += [
        "",
        "## Max residual per backend and scenario",
        "",
        _table(
            ["solver", *scen],
            (
                [nm]
                + [
                    "–" if (nm, s) not in look else _fmt_num(look[(nm, s)]["max_residual"])
                    for s in scen
                ]
                for nm in names
            ),
        ),
        "",
        "## Statuses per backend and scenario",
        "",
        _table(
            ["solver", *scen],
            (
                [nm]
                + [
                    "–"
                    if (nm, s) not in look
                    else ", ".join(f"{k} {v}" for k, v in look[(nm, s)]["statuses"].items())
                    for s in scen
                ]
                for nm in names
            ),
        ),
    ]
    if result.compile_seconds:
        parts += ["", "One-time compilation (excluded from the times above):"]
        parts += [f"- {k}: {_fmt_time(v)}" for k, v in sorted(result.compile_seconds.items())]
    parts += [
        "",
        f"Configuration: n = {', '.join(map(str, cfg.ns))}; {cfg.instances} instances per "
        f"(scenario, n) ({cfg.heavy_instances} for CVXPY backends); seed {cfg.seed}; "
        f"tol {cfg.tol:g}; wall time {result.wall_seconds:.1f} s.",
        "Times are each backend's `SolveResult.seconds` (α computation only; validation, "
        "compilation and the final certificate excluded), medians over instances.",
    ]
    return "\n".join(parts) + "\n"


def write_outputs(
    result: CompareRun, summary: Summary, out_dir: str | Path, plots: bool = True
) -> list[Path]:
    """Write results.json, results.csv, summary.md and (``plots``) the PNGs into ``out_dir``."""
    from mtopt.io import atomic_write, atomic_write_json, atomic_write_text

    out = Path(out_dir)
    rows = [{k: r.get(k) for k in ROW_KEYS} for r in result.rows]
    for r in rows:  # JSON has no NaN/Inf
        for k in ("seconds", "residual"):
            if isinstance(r[k], float) and not math.isfinite(r[k]):
                r[k] = None
    written = [atomic_write_json(out / "results.json", rows)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ROW_KEYS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    written.append(atomic_write_text(out / "results.csv", buf.getvalue()))
    written.append(
        atomic_write_text(
            out / "summary.md",
            "# mtopt compare-solvers\n\n" + format_summary(result, summary, full=True),
        )
    )
    if plots:
        written += plot(result, out, atomic_write)
    return written


def plot(result: CompareRun, out_dir: Path, atomic_write: Callable[..., Path]) -> list[Path]:
    """time_vs_n.png (median and p10–p90 per backend) and residuals.png (per scenario)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in result.rows if r["seconds"] is not None]
    names = [b.name for b in result.backends]
    paths = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in names:
        ns, med, lo, hi = [], [], [], []
        for n in sorted({r["n"] for r in rows if r["solver"] == name}):
            ts = [
                r["seconds"]
                for r in rows
                if r["solver"] == name and r["n"] == n and r["scenario"] not in DEGENERATE
            ]
            if ts:
                ns.append(n)
                med.append(np.median(ts))
                lo.append(np.percentile(ts, 10))
                hi.append(np.percentile(ts, 90))
        if ns:
            (line,) = ax.plot(ns, med, marker="o", label=name)
            ax.fill_between(ns, lo, hi, alpha=0.15, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    all_n = sorted({r["n"] for r in rows})
    if all_n:
        ax.set_xticks(all_n)
        ax.set_xticklabels([str(n) for n in all_n])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("n (tasks)")
    ax.set_ylabel("seconds per solve (median, p10–p90)")
    ax.set_title("Solve time vs n (all scenarios but opposite)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(
        atomic_write(out_dir / "time_vs_n.png", lambda fh: fig.savefig(fh, format="png"), "wb")
    )
    plt.close(fig)

    scen = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]
    cols = min(3, max(1, len(scen)))
    nrows = max(1, math.ceil(len(scen) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, s in zip(axes.flat, scen):
        data, labels = [], []
        for name in names:
            rs = [
                max(r["residual"], 1e-17)
                for r in rows
                if r["solver"] == name and r["scenario"] == s and r["residual"] is not None
            ]
            if rs:
                data.append(np.log10(rs))
                labels.append(name)
        if data:
            ax.boxplot(data, showfliers=True)
            ax.set_xticks(range(1, len(labels) + 1))
            ax.set_xticklabels(labels, rotation=30, fontsize=7)
        ax.axhline(-10, color="grey", lw=0.8, ls="--")
        ax.set_title(s, fontsize=9)
        ax.set_ylabel("log10 residual", fontsize=8)
    for ax in list(axes.flat)[len(scen) :]:
        ax.axis("off")
    fig.suptitle("Residual max|a(Ga) - 1| per backend (rows with an alpha)", fontsize=10)
    fig.tight_layout()
    paths.append(
        atomic_write(out_dir / "residuals.png", lambda fh: fig.savefig(fh, format="png"), "wb")
    )
    plt.close(fig)
    return paths
