"""The reduced :class:`Table` and the row/column bookkeeping the four table builders share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mtopt.sweep.config import SweepConfig
from mtopt.sweep.planning import PlannedRun


@dataclass
class Table:
    """A reduced sweep: markdown text, CSV rows (tidy) and JSON-ready data."""

    title: str
    markdown: str
    csv_rows: list[dict[str, Any]]
    data: dict[str, Any]


def _values(records: Sequence[dict[str, Any]], task: str) -> list[float]:
    out = []
    for r in records:
        if r.get("status") != "ok":
            continue
        v = r["test"]["auc_avg"] if task == "__avg__" else r["test"]["auc"].get(task)
        if v is not None and math.isfinite(v):
            out.append(float(v))
    return out


def _row_order(runs: Sequence[PlannedRun], config: SweepConfig) -> list[tuple[str, str]]:
    """(backbone, method) rows: STL, the plain backbones, then each method on each backbone."""
    rows: list[tuple[str, str]] = []
    for run in runs:
        k = (run.backbone, run.method)
        if k not in rows:
            rows.append(k)
    base = [r for r in rows if r[1] == config.baseline]
    stl = [r for r in base if r[0] == "STL"]
    plain = [r for r in base if r[0] != "STL"]
    others = [r for r in rows if r[1] != config.baseline]
    by_method: dict[str, list[tuple[str, str]]] = {}
    for r in others:
        by_method.setdefault(r[1], []).append(r)
    return stl + plain + [r for m in by_method.values() for r in m]


def row_name(backbone: str, method: str, baseline: str) -> str:
    """``MMoE`` for the plain backbone, ``STL``, else ``MMoE+PUB``."""
    if method == baseline:
        return backbone
    return f"{backbone}+{method}"


def _groups(
    runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    g: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run, rec in zip(runs, records):
        g.setdefault((run.recipe_label, run.backbone, run.method), []).append(rec)
    return g


def _recipe_tasks(
    runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> dict[str, list[str]]:
    tasks: dict[str, list[str]] = {}
    for run, rec in zip(runs, records):
        tasks.setdefault(run.recipe_label, [])
        if rec.get("status") == "ok" and not tasks[run.recipe_label]:
            tasks[run.recipe_label] = list(rec["tasks"])
    return tasks
