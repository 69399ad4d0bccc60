"""Table III / IV: test AUC per task, mean ± std over seeds, Welch marks, bold best."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mtopt.sweep._format import _fmt, _md_table
from mtopt.sweep.config import SweepConfig
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
                text += " ‡"
            line.append(text)
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
                }
            )
        md_rows.append(line)
    md = _md_table(["Method", *[head(c) for c in columns]], md_rows)
    seeds = ", ".join(str(s) for s in config.seeds)
    md += (
        f"\n\nTest AUC of the best-validation checkpoint, mean ± std over seeds {seeds} "
        f"(sample std). ‡: better than the plain backbone ({config.baseline}) with p < "
        f"{ALPHA_LEVEL} (one-sided Welch t-test over seeds). Bold: best in the column at "
        f"{DECIMALS} decimals."
    )
    data = {
        "columns": [{"recipe": c[0], "task": c[1]} for c in columns],
        "rows": [
            {
                "name": row_name(*row, config.baseline),
                "backbone": row[0],
                "method": row[1],
                "cells": [cells[(row, col)] for col in columns],
            }
            for row in rows
        ],
    }
    return Table(f"{config.name}: test AUC", md, csv_rows, data)
