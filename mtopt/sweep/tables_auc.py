"""Table III / IV: test AUC per task, mean ± std over seeds, Welch marks (and which survive
Holm's correction across the table), bold best, Δm% against STL, the mean rank, and the
bootstrap intervals of each method's paired difference to its backbone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mtopt.sweep._format import _fmt, _md_table
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.multiple import (
    CONFIDENCE,
    benjamini_hochberg,
    bootstrap_ci,
    delta_m,
    holm,
    mean_ranks,
)
from mtopt.sweep.planning import PlannedRun
from mtopt.sweep.stats import ALPHA_LEVEL, DECIMALS, _stats, best_rows, welch_greater
from mtopt.sweep.table import Table, _groups, _recipe_tasks, _row_order, _values, row_name


def auc_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Table III / IV: per recipe, test AUC per task and average (mean ± std over seeds);
    ``‡`` when significantly better than the plain backbone (one-sided Welch, p < 0.05);
    the best value per column in bold (at the 4 decimals shown)."""
    groups = _groups(runs, records)
    tasks = _recipe_tasks(runs, records)
    rows = _row_order(runs, config)
    columns = [(r, t) for r in tasks for t in [*tasks[r], "__avg__"]]
    cells: dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]] = {}
    for col in columns:
        recipe, task = col
        for row in rows:
            st = _stats(_values(groups.get((recipe, *row), []), task))
            base_row = (row[0], config.baseline)
            st["p"] = None
            if row[1] != config.baseline and base_row in rows:
                base = _values(groups.get((recipe, *base_row), []), task)
                st["p"] = welch_greater(st["values"], base)
            st["significant"] = st["p"] is not None and st["p"] < ALPHA_LEVEL
            cells[(row, col)] = st
        for row in best_rows({row: cells[(row, col)]["mean"] for row in rows}):
            cells[(row, col)]["best"] = True
    _paired_cis(config, runs, records, rows, columns, cells)
    keys = list(cells)
    for name, adjusted in (
        ("p_holm", holm([cells[k]["p"] for k in keys])),
        ("q_bh", benjamini_hochberg([cells[k]["p"] for k in keys])),
    ):
        for k, v in zip(keys, adjusted):
            cells[k][name] = v
    for c in cells.values():
        c["significant_holm"] = c["p_holm"] is not None and c["p_holm"] < ALPHA_LEVEL
    stl_row = ("STL", config.baseline)
    dm: dict[tuple[tuple[str, str], str], float | None] = {}
    for recipe in tasks:
        for row in rows:
            dm[(row, recipe)] = (
                None
                if stl_row not in rows or not tasks[recipe]
                else delta_m(
                    [cells[(row, (recipe, t))]["mean"] for t in tasks[recipe]],
                    [cells[(stl_row, (recipe, t))]["mean"] for t in tasks[recipe]],
                    [True] * len(tasks[recipe]),
                )
            )
    task_cols = [c for c in columns if c[1] != "__avg__"]
    ranks = mean_ranks([{row: cells[(row, col)]["mean"] for row in rows} for col in task_cols])
    with_dm = stl_row in rows
    multi = len(tasks) > 1

    def head(col: tuple[str, str]) -> str:
        t = "Average" if col[1] == "__avg__" else col[1]
        return f"{col[0]}: {t}" if multi else t

    md_rows = []
    csv_rows = []
    for row in rows:
        name = row_name(*row, config.baseline)
        line = [name]
        for col in columns:
            c = cells[(row, col)]
            text = _fmt(c["mean"])
            if c["n"] > 1:
                text += f" ± {_fmt(c['std'])}"
            if c.get("best"):
                text = f"**{text}**"
            if c["significant"]:
                text += " ‡*" if c["significant_holm"] else " ‡"
            line.append(text)
            if with_dm and col[1] == "__avg__":
                v = dm[(row, col[0])]
                line.append("—" if v is None or row == stl_row else f"{v:+.2f}")
            csv_rows.append(
                {
                    "recipe": col[0],
                    "row": name,
                    "backbone": row[0],
                    "method": row[1],
                    "column": "average" if col[1] == "__avg__" else col[1],
                    "n": c["n"],
                    "mean": c["mean"],
                    "std": c["std"],
                    "p_vs_backbone": c["p"],
                    "significant": int(c["significant"]),
                    "best": int(bool(c.get("best"))),
                    "p_holm": c["p_holm"],
                    "q_bh": c["q_bh"],
                    "significant_holm": int(c["significant_holm"]),
                    "diff_vs_backbone": c.get("diff"),
                    "ci_low": c.get("ci_low"),
                    "ci_high": c.get("ci_high"),
                }
            )
        for recipe in tasks if with_dm else []:
            csv_rows.append(_extra_row(recipe, name, row, "delta_m_pct", dm[(row, recipe)]))
        csv_rows.append(_extra_row("all", name, row, "mean_rank", ranks.get(row)))
        line.append(_fmt(ranks.get(row), 2))
        md_rows.append(line)
    header = []
    for c in columns:
        header.append(head(c))
        if with_dm and c[1] == "__avg__":
            header.append(f"{c[0]}: Δm%" if multi else "Δm%")
    md = _md_table(["Method", *header, "Mean rank"], md_rows)
    seeds = ", ".join(str(s) for s in config.seeds)
    md += (
        f"\n\nTest AUC of the best-validation checkpoint, mean ± std over seeds {seeds} "
        f"(sample std). ‡: better than the plain backbone ({config.baseline}) with p < "
        f"{ALPHA_LEVEL} (one-sided Welch t-test over seeds); ‡*: still p < {ALPHA_LEVEL} after "
        f"Holm's correction across the {sum(c['p'] is not None for c in cells.values())} tests "
        f"of this table. Bold: best in the column at {DECIMALS} decimals."
        + (
            " Δm%: mean relative change of the task AUCs against STL, in percent (positive: "
            "better)."
            if with_dm
            else ""
        )
        + " Mean rank: over the task columns (1 = best)."
    )
    md += "\n\n" + _diff_markdown(config, rows, columns, cells)
    data = {
        "columns": [{"recipe": c[0], "task": c[1]} for c in columns],
        "rows": [
            {
                "name": row_name(*row, config.baseline),
                "backbone": row[0],
                "method": row[1],
                "cells": [cells[(row, col)] for col in columns],
                "delta_m_pct": {r: dm[(row, r)] for r in tasks} if with_dm else None,
                "mean_rank": ranks.get(row),
            }
            for row in rows
        ],
    }
    return Table(f"{config.name}: test AUC", md, csv_rows, data)


def _extra_row(
    recipe: str, name: str, row: tuple[str, str], column: str, value: float | None
) -> dict[str, Any]:
    return {
        "recipe": recipe,
        "row": name,
        "backbone": row[0],
        "method": row[1],
        "column": column,
        "mean": value,
    }


def _paired_cis(
    config: SweepConfig,
    runs: Sequence[PlannedRun],
    records: Sequence[dict[str, Any]],
    rows: list[tuple[str, str]],
    columns: list[tuple[str, str]],
    cells: dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]],
) -> None:
    """Per cell of a method row: the mean paired difference to its backbone's row (runs paired
    by seed: same data, initialisation and batch order) and its bootstrap interval."""
    by_seed: dict[tuple[str, str, str, str, int], float] = {}
    for run, rec in zip(runs, records):
        if rec.get("status") != "ok":
            continue
        for recipe, task in columns:
            if recipe != run.recipe_label:
                continue
            v = rec["test"]["auc_avg"] if task == "__avg__" else rec["test"]["auc"].get(task)
            if v is not None and math.isfinite(v):
                by_seed[(recipe, task, run.backbone, run.method, run.seed)] = float(v)
    for row in rows:
        base = (row[0], config.baseline)
        if row[1] == config.baseline or base not in rows:
            continue
        for col in columns:
            diffs = [
                v - by_seed[(*col, *base, seed)]
                for (r, t, b, m, seed), v in by_seed.items()
                if (r, t, b, m) == (*col, *row) and (*col, *base, seed) in by_seed
            ]
            ci = bootstrap_ci(diffs)
            cells[(row, col)]["diff"] = sum(diffs) / len(diffs) if diffs else None
            cells[(row, col)]["ci_low"] = None if ci is None else ci[0]
            cells[(row, col)]["ci_high"] = None if ci is None else ci[1]


def _diff_markdown(
    config: SweepConfig,
    rows: list[tuple[str, str]],
    columns: list[tuple[str, str]],
    cells: dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]],
) -> str:
    """The average columns as differences to the backbone with their bootstrap intervals."""
    avg = [c for c in columns if c[1] == "__avg__"]
    body = []
    for row in rows:
        if row[1] == config.baseline or (row[0], config.baseline) not in rows:
            continue
        line = [row_name(*row, config.baseline)]
        for col in avg:
            c = cells[(row, col)]
            if c.get("diff") is None:
                line.append("—")
                continue
            text = f"{c['diff']:+.4f}"
            if c.get("ci_low") is not None:
                text += f" [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
            if c["significant_holm"]:
                text += " *"
            line.append(text)
        body.append(line)
    if not body:
        return ""
    table = _md_table(["Method", *[f"{c[0]}: Δ average" for c in avg]], body)
    return (
        f"{table}\n\nDifference of the average test AUC to the plain backbone, mean over seeds "
        f"paired by seed, with its {round(CONFIDENCE * 100)}% percentile bootstrap interval "
        "(scipy.stats.bootstrap; with few seeds the interval is narrow and rough). *: "
        "significant after Holm's correction (as ‡* above)."
    )
