"""Summary of a solver comparison: per-(solver, n) and per-scenario aggregates, the markdown
report, and the files ``mtopt compare-solvers`` writes (results.json/.csv, summary.md, PNGs)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.compare.runner import REFERENCE, ROW_KEYS, CompareConfig, CompareRun
from mtopt.compare.scenarios import DEGENERATE, SCENARIOS, expected_status


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
        from mtopt.compare.plots import plot

        written += plot(result, out, atomic_write)
    return written
