"""The tuned-settings table (``tuned.md`` / ``tuned.csv``), every trial (``tuned.json``) and a
plot of each study's trials (``trials.png``: validation AUC against the learning rate)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mtopt.io import atomic_write_json, atomic_write_text
from mtopt.sweep import format_number as _fmt
from mtopt.sweep import jsonable as _jsonable
from mtopt.sweep import markdown_table as _md_table
from mtopt.tune.config import TuneConfig
from mtopt.tune.space import LR_KEY


def _params_text(params: dict[str, Any] | None) -> str:
    if not params:
        return "—"
    out = []
    for k, v in sorted(params.items(), key=lambda kv: (kv[0] != LR_KEY, kv[0])):
        name = "lr" if k == LR_KEY else k
        out.append(f"{name}={v:.3g}" if isinstance(v, float) else f"{name}={v}")
    return ", ".join(out)


def tuned_markdown(rows: list[dict[str, Any]]) -> str:
    """One line per cell: the best setting, its validation AUC and the trials it came from."""
    body = [
        [
            r["recipe"],
            r["backbone"],
            r["method"],
            _params_text(r["best_params"]),
            _fmt(r["best_val_auc"]),
            f"{r['complete']}/{r['budget']}" + (f" ({r['failed']} failed)" if r["failed"] else ""),
        ]
        for r in rows
    ]
    return _md_table(
        ["Recipe", "Backbone", "Method", "Best setting", "Val AUC avg", "Trials"], body
    )


def write_tuned(
    config: TuneConfig, rows: list[dict[str, Any]], out_dir: Path, budget: str
) -> dict[str, str]:
    """Write ``tuned.md``, ``tuned.csv``, ``tuned.json`` and ``trials.png``; their paths."""
    md = [f"## {config.name}: tuned settings", "", budget, "", tuned_markdown(rows), ""]
    files = {"tuned_markdown": str(atomic_write_text(out_dir / "tuned.md", "\n".join(md)))}
    buf = io.StringIO()
    cols = ["recipe", "backbone", "method", "param", "value", "best_val_auc", "complete", "budget"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        for k, v in sorted((r["best_params"] or {}).items()):
            w.writerow({c: r.get(c, "") for c in cols} | {"param": k, "value": v})
    files["tuned_csv"] = str(atomic_write_text(out_dir / "tuned.csv", buf.getvalue()))
    doc = {"name": config.name, "budget": budget, "cells": rows}
    files["tuned_json"] = str(atomic_write_json(out_dir / "tuned.json", _jsonable(doc)))
    png = plot_trials(rows, out_dir / "trials.png")
    if png:
        files["trials_plot"] = png
    return files


def plot_trials(rows: list[dict[str, Any]], path: Path) -> str | None:
    """Validation AUC against the learning rate of every finished trial, one panel per
    (recipe, backbone), one colour per method; None when no trial has both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        panels.setdefault((r["recipe"], r["backbone"]), []).append(r)
    points = any(
        t["value"] is not None and LR_KEY in t["params"] for r in rows for t in r["trials"]
    )
    if not points:
        return None
    n = len(panels)
    ncol = min(n, 3)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
    for ax, ((recipe, backbone), rs) in zip(axes.flat, panels.items()):
        for r in rs:
            pts = [
                (t["params"][LR_KEY], t["value"])
                for t in r["trials"]
                if t["value"] is not None and LR_KEY in t["params"]
            ]
            if pts:
                xs, ys = zip(*pts)
                ax.scatter(xs, ys, s=14, label=r["method"])
        ax.set_xscale("log")
        ax.set_title(f"{recipe} / {backbone}", fontsize=8)
        ax.set_xlabel("learning rate", fontsize=8)
        ax.set_ylabel("val AUC avg", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
