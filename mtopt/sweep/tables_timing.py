"""Table V: CPU and wall seconds per training epoch, ratios to the plain backbone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.sweep._format import _fmt, _md_table
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.planning import PlannedRun
from mtopt.sweep.stats import _mean
from mtopt.sweep.table import Table, _groups, _row_order, row_name


def timing_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Table V: seconds per training epoch (wall and CPU), ratio to the plain backbone,
    milliseconds per step and per solve."""
    groups = _groups(runs, records)
    rows = _row_order(runs, config)
    recipes = list(dict.fromkeys(r.recipe_label for r in runs))

    def per_epoch(rec: dict[str, Any], key: str | None) -> float | None:
        epochs = max(rec["summary"]["epochs_completed"] or 1, 1)
        if key is None:  # wall seconds of the training loop (evaluation excluded)
            summ = rec["summary"]
            value = summ.get("train_seconds", summ["seconds"])
        else:
            value = rec["observations"].get(key)
        return None if value is None else value / epochs

    def stat(recs: list[dict[str, Any]], key: str | None) -> float | None:
        vals = [per_epoch(r, key) for r in recs]
        return _mean([v for v in vals if v is not None])

    def obs(recs: list[dict[str, Any]], key: str) -> float | None:
        return _mean([r["observations"][key] for r in recs if r["observations"].get(key)])

    md_rows, csv_rows = [], []
    for recipe in recipes:
        ok = {
            row: [r for r in groups.get((recipe, *row), []) if r.get("status") == "ok"]
            for row in rows
        }
        base = {
            row[0]: (stat(ok[row], None), stat(ok[row], "loop_cpu_seconds"))
            for row in rows
            if row[1] == config.baseline
        }
        for row in rows:
            wall, cpu = stat(ok[row], None), stat(ok[row], "loop_cpu_seconds")
            cpus = [per_epoch(r, "loop_cpu_seconds") for r in ok[row]]
            cpus = [c for c in cpus if c is not None]
            cpu_sd = float(np.std(cpus, ddof=1)) if len(cpus) > 1 else None
            bw, bc = base.get(row[0], (None, None))
            ratio_wall = wall / bw if wall is not None and bw else None
            ratio_cpu = cpu / bc if cpu is not None and bc else None
            step_cpu = obs(ok[row], "step_cpu_seconds_mean")
            solve = obs(ok[row], "solve_seconds_mean")
            solves = sum(r["observations"]["solves"] for r in ok[row])
            name = row_name(*row, config.baseline)
            md_rows.append(
                [
                    recipe,
                    name,
                    _fmt(cpu, 2) + ("" if cpu_sd is None else f" ± {cpu_sd:.2f}"),
                    _fmt(ratio_cpu, 2),
                    _fmt(wall, 2),
                    _fmt(ratio_wall, 2),
                    _fmt(None if step_cpu is None else 1e3 * step_cpu, 1),
                    _fmt(None if solve is None else 1e3 * solve, 3),
                    str(solves),
                ]
            )
            csv_rows.append(
                {
                    "recipe": recipe,
                    "row": name,
                    "backbone": row[0],
                    "method": row[1],
                    "cpu_seconds_per_epoch": cpu,
                    "cpu_seconds_per_epoch_std": cpu_sd,
                    "cpu_ratio_to_backbone": ratio_cpu,
                    "wall_seconds_per_epoch": wall,
                    "wall_ratio_to_backbone": ratio_wall,
                    "cpu_ms_per_step": None if step_cpu is None else 1e3 * step_cpu,
                    "ms_per_solve": None if solve is None else 1e3 * solve,
                    "solves": solves,
                    "runs": len(ok[row]),
                }
            )
    md = _md_table(
        [
            "Recipe",
            "Method",
            "CPU s / epoch",
            "× backbone",
            "wall s / epoch",
            "× backbone",
            "CPU ms / step",
            "ms / solve",
            "solves",
        ],
        md_rows,
    )
    md += (
        "\n\nCPU s / epoch: process CPU time of the training loop (first step to last step: "
        "data, forward passes, the method's steps; no evaluation, train.eval_every is set past "
        "the end) per epoch, one thread, so it does not depend on other load on the machine. "
        "wall s / epoch: the trainer's wall-clock seconds per epoch (affected by other load). "
        "CPU ms / step: the method's step alone (backward passes + update). ms / solve: α "
        "solver wall time per solve. Mean (± sample std) over the runs of each row (one per "
        "seed), executed one at a time; ratios are of the means."
    )
    return Table(f"{config.name}: time per epoch", md, csv_rows, {"rows": csv_rows})
