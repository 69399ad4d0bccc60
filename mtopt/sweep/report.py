"""Reducing a sweep's records to its table and writing ``table.md``, ``table.csv`` and
``results.json``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mtopt.io import atomic_write_json, atomic_write_text
from mtopt.sweep._format import _jsonable
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.planning import PlannedRun, _run_name
from mtopt.sweep.spec import method_label
from mtopt.sweep.table import Table
from mtopt.sweep.tables_auc import auc_table
from mtopt.sweep.tables_diagnostics import diagnostics_table
from mtopt.sweep.tables_ranking import ranking_table
from mtopt.sweep.tables_solvers import solver_table
from mtopt.sweep.tables_timing import timing_table

REDUCERS: dict[str, Callable[..., Table]] = {
    "auc": auc_table,
    "ranking": ranking_table,
    "timing": timing_table,
    "diagnostics": diagnostics_table,
    "solvers": solver_table,
}


def reduce(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """The table of ``config.kind`` for these runs and their result records."""
    return REDUCERS[config.kind](config, runs, records)


def failed_runs(runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]) -> list[dict]:
    """``[{run, error, dir}]`` of every failed run."""
    return [
        {"run": _run_name(run), "error": rec.get("error"), "dir": str(run.run_dir)}
        for run, rec in zip(runs, records)
        if rec.get("status") != "ok"
    ]


def write_outputs(
    config: SweepConfig,
    runs: Sequence[PlannedRun],
    records: Sequence[dict[str, Any]],
    table: Table,
    out_dir: Path,
    *,
    wall_seconds: float,
    executed: int,
    skipped: int,
    command: str | None = None,
    extra_markdown: str = "",
) -> dict[str, str]:
    """Write ``table.md``, ``table.csv`` and ``results.json`` (atomically); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fails = failed_runs(runs, records)
    run_seconds = sum(r.get("wall_seconds", 0.0) for r in records)
    cpu_seconds = sum(r.get("cpu_seconds", 0.0) or 0.0 for r in records)
    md = [f"## {table.title}", ""]
    if config.description:
        md += [config.description, ""]
    if command:
        md += [f"Regenerate: `{command}`", ""]
    md += [table.markdown, ""]
    if extra_markdown:
        md += [extra_markdown, ""]
    md += [
        f"{len(runs)} runs ({executed} executed now, {skipped} reused from earlier sweeps); "
        f"this invocation took {wall_seconds:.0f} s wall; the runs themselves "
        f"{run_seconds:.0f} s wall and {cpu_seconds:.0f} s CPU in total (sums over runs, "
        "measured when each was trained).",
        "",
    ]
    if fails:
        md += [f"**{len(fails)} failed run(s)** (excluded from the table):", ""]
        md += [f"- {f['run']}: `{f['error']}`" for f in fails]
        md.append("")
    if config.paper:
        md += ["Paper, for comparison:", "", config.paper, ""]
    paths = {
        "markdown": str(atomic_write_text(out_dir / "table.md", "\n".join(md))),
    }
    buf = io.StringIO()
    if table.csv_rows:
        cols = list(dict.fromkeys(k for r in table.csv_rows for k in r))
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in table.csv_rows:
            w.writerow({k: "" if r.get(k) is None else r.get(k) for k in cols})
    paths["csv"] = str(atomic_write_text(out_dir / "table.csv", buf.getvalue()))
    doc = {
        "name": config.name,
        "kind": config.kind,
        "description": config.description,
        "command": command,
        "config": {
            "recipes": config.recipes,
            "backbones": [b.key for b in config.backbones],
            "methods": [{"label": method_label(m), "spec": m.key} for m in config.methods],
            "seeds": config.seeds,
            "overrides": config.overrides,
            "baseline": config.baseline,
            "stl": config.stl,
        },
        "wall_seconds": round(wall_seconds, 3),
        "run_seconds": round(run_seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "executed": executed,
        "skipped": skipped,
        "failed": fails,
        "table": table.data,
        "runs": [
            {
                "recipe": run.recipe_label,
                "backbone": run.backbone,
                "method": run.method,
                "seed": run.seed,
                "key": run.key,
                "dir": str(run.run_dir),
                "dropped_model_keys": run.dropped_model_keys,
                "result": {k: v for k, v in rec.items() if k != "observations"}
                | {"observations": _short_obs(rec.get("observations"))},
            }
            for run, rec in zip(runs, records)
        ],
    }
    paths["json"] = str(atomic_write_json(out_dir / "results.json", _jsonable(doc)))
    return paths


def _short_obs(obs: dict[str, Any] | None) -> dict[str, Any] | None:
    """Observations without the per-step series (those stay in each run's result.json)."""
    if obs is None:
        return None
    return {k: v for k, v in obs.items() if not isinstance(v, list)}
