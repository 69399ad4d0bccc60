"""Solver backends vs training outcome: AUCs, time per solve, share of failed solves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mtopt.sweep._format import _fmt, _md_table
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.planning import PlannedRun
from mtopt.sweep.stats import _mean, _stats
from mtopt.sweep.table import Table, _groups, _recipe_tasks, _row_order, _values


def solver_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Solver backends vs training outcome: AUCs, time per solve, share of failed solves."""
    groups = _groups(runs, records)
    tasks = _recipe_tasks(runs, records)
    rows = _row_order(runs, config)
    md_rows, csv_rows = [], []
    for recipe, ts in tasks.items():
        for row in rows:
            recs = groups.get((recipe, *row), [])
            ok = [r for r in recs if r.get("status") == "ok"]
            statuses: dict[str, int] = {}
            for r in ok:
                for k, v in r["observations"]["statuses"].items():
                    statuses[k] = statuses.get(k, 0) + v
            attempted = sum(v for k, v in statuses.items() if k != "reused")
            failed = sum(v for k, v in statuses.items() if k not in ("ok", "reused"))
            share = failed / attempted if attempted else None
            solve = _mean(
                [
                    r["observations"]["solve_seconds_mean"]
                    for r in ok
                    if r["observations"]["solve_seconds_mean"] is not None
                ]
            )
            median = _mean(
                [
                    r["observations"]["solve_seconds_median"]
                    for r in ok
                    if r["observations"].get("solve_seconds_median") is not None
                ]
            )
            res = [
                r["observations"]["residual_max"]
                for r in ok
                if r["observations"]["residual_max"] is not None
            ]
            aucs = {t: _stats(_values(recs, t)) for t in [*ts, "__avg__"]}
            name = row[1] if len({r[0] for r in rows}) == 1 else f"{row[0]}+{row[1]}"

            def cell(s: dict[str, Any]) -> str:
                txt = _fmt(s["mean"])
                return txt + (f" ± {_fmt(s['std'])}" if s["n"] > 1 else "")

            md_rows.append(
                [
                    recipe,
                    name,
                    *[cell(aucs[t]) for t in [*ts, "__avg__"]],
                    _fmt(None if solve is None else 1e3 * solve, 3),
                    _fmt(None if median is None else 1e3 * median, 3),
                    str(attempted),
                    "—" if share is None else f"{100 * share:.1f}%",
                    "—" if not res else f"{max(res):.1e}",
                    f"{len(ok)}/{len(recs)}",
                ]
            )
            csv_rows.append(
                {
                    "recipe": recipe,
                    "row": name,
                    **{
                        f"auc_{'average' if t == '__avg__' else t}_{k}": aucs[t][k]
                        for t in [*ts, "__avg__"]
                        for k in ("mean", "std")
                    },
                    "ms_per_solve": None if solve is None else 1e3 * solve,
                    "ms_per_solve_median": None if median is None else 1e3 * median,
                    "solves": attempted,
                    "failed_share": share,
                    "statuses": json.dumps(statuses, sort_keys=True),
                    "residual_max": max(res) if res else None,
                    "runs_ok": len(ok),
                    "runs": len(recs),
                }
            )
    first = next(iter(tasks.values()), [])
    header = ["Recipe", "Solver", *first, "Average", "ms / solve", "median ms", "solves"]
    header += ["failed", "max r"]
    md = _md_table([*header, "runs ok"], md_rows)
    md += (
        "\n\nTest AUC mean ± std over seeds. failed: share of attempted solves whose status "
        "was not `ok` (`not_converged`, `pareto_stationary`); PUB then keeps the previous α. "
        "max r: largest residual maxᵢ|αᵢ(Gα)ᵢ − 1| of any solve. ms / solve (mean; median: "
        "mean over runs of each run's median) excludes CVXPY's one-time compilation."
    )
    return Table(f"{config.name}: solver backends", md, csv_rows, {"rows": csv_rows})
