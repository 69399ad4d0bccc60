"""The ranking table: per recipe and row, the test AUC, GAUC, NE and log-loss of every task and
the CVR AUC on clicked rows, mean ± std over seeds (``kind: ranking``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mtopt.sweep._format import _fmt, _md_table
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.planning import PlannedRun
from mtopt.sweep.stats import DECIMALS, _stats, best_rows
from mtopt.sweep.table import Table, _groups, _recipe_tasks, _row_order, row_name

#: per-task metrics of the table: (key in the summary's ``test``, label, higher is better)
TASK_METRICS = (("auc", "AUC", True), ("gauc", "GAUC", True), ("ne", "NE", False))
#: in the CSV / JSON only
EXTRA_METRICS = (("logloss", "log-loss", False),)


def metric_values(records: Sequence[dict[str, Any]], metric: str, task: str | None) -> list[float]:
    """The finite test values of ``metric`` (of ``task``; ``task=None``: a per-split number
    such as ``cvr_auc``) over the successful runs; a null (undefined) value is left out."""
    out = []
    for r in records:
        if r.get("status") != "ok":
            continue
        v = (r.get("test") or {}).get(metric)
        if task is not None:
            v = (v or {}).get(task)
        if v is not None and math.isfinite(v):
            out.append(float(v))
    return out


def ranking_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Test AUC, GAUC, NE (and log-loss) per task and the CVR AUC on clicked rows, mean ± std
    over seeds; the best value of each column in bold (highest; lowest for NE)."""
    groups = _groups(runs, records)
    tasks = _recipe_tasks(runs, records)
    rows = _row_order(runs, config)
    cols: list[tuple[str, str, str | None, bool]] = []  # (recipe, metric, task, higher)
    for recipe, ts in tasks.items():
        for t in ts:
            cols += [(recipe, m, t, hi) for m, _, hi in (*TASK_METRICS, *EXTRA_METRICS)]
        cols.append((recipe, "cvr_auc", None, True))
    cells = {}
    for col in cols:
        recipe, metric, task, higher = col
        for row in rows:
            cells[(row, col)] = _stats(metric_values(groups.get((recipe, *row), []), metric, task))
        means = {row: cells[(row, col)]["mean"] for row in rows}
        sign = 1.0 if higher else -1.0
        signed = {k: None if v is None else sign * v for k, v in means.items()}
        for row in best_rows(signed):
            cells[(row, col)]["best"] = True
    shown = [c for c in cols if c[1] not in {m for m, _, _ in EXTRA_METRICS}]
    # drop a column no run has a value for (a dataset without groups has no GAUC)
    shown = [c for c in shown if any(cells[(row, c)]["n"] for row in rows)]
    multi = len(tasks) > 1
    labels = {m: lab for m, lab, _ in (*TASK_METRICS, *EXTRA_METRICS)} | {"cvr_auc": "CVR AUC"}

    def head(c: tuple[str, str, str | None, bool]) -> str:
        text = f"{c[2]} {labels[c[1]]}" if c[2] is not None else labels[c[1]]
        return f"{c[0]}: {text}" if multi else text

    md_rows, csv_rows = [], []
    for row in rows:
        name = row_name(*row, config.baseline)
        line = [name]
        for c in shown:
            st = cells[(row, c)]
            text = _fmt(st["mean"]) + (f" ± {_fmt(st['std'])}" if st["n"] > 1 else "")
            line.append(f"**{text}**" if st.get("best") else text)
        md_rows.append(line)
        for c in cols:
            st = cells[(row, c)]
            csv_rows.append(
                {
                    "recipe": c[0],
                    "row": name,
                    "backbone": row[0],
                    "method": row[1],
                    "metric": c[1],
                    "task": c[2],
                    "n": st["n"],
                    "mean": st["mean"],
                    "std": st["std"],
                    "best": int(bool(st.get("best"))),
                }
            )
    md = _md_table(["Method", *[head(c) for c in shown]], md_rows)
    seeds = ", ".join(str(s) for s in config.seeds)
    md += (
        f"\n\nTest metrics of the best-validation checkpoint, mean ± std over seeds {seeds}. "
        "GAUC: the AUC within each group (user, search) averaged over the groups weighted by "
        "their rows; groups with one class are left out. NE: log-loss / entropy of the base "
        "rate (lower is better, 1 = the base-rate predictor). CVR AUC: the conversion "
        "prediction's AUC on the clicked rows. An undefined value (a single class) is left out "
        "of its cell, whose run count `n` is in table.csv. Bold: best in the column at "
        f"{DECIMALS} decimals."
    )
    data = {
        "columns": [{"recipe": c[0], "metric": c[1], "task": c[2]} for c in cols],
        "rows": [
            {
                "name": row_name(*row, config.baseline),
                "backbone": row[0],
                "method": row[1],
                "cells": [cells[(row, c)] for c in cols],
            }
            for row in rows
        ],
    }
    return Table(f"{config.name}: ranking metrics", md, csv_rows, data)
