"""Two methods of one finished sweep compared run by run, paired by (recipe, backbone, seed)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from mtopt.errors import InputError


def _is_int(x: Any) -> bool:
    try:
        return int(x) == x
    except (TypeError, ValueError):
        return False


def paired_comparison(
    doc: dict[str, Any], a: str, b: str, metric: str = "average", source: str = "results.json"
) -> dict[str, Any]:
    """Method ``a`` against method ``b`` on the runs of one sweep (its ``results.json`` as a
    dict), paired by (recipe, backbone, seed): the runs share data, initialisation and batch
    order, so the per-seed differences are the right unit (a Welch test across seeds ignores
    the pairing). ``metric``: ``average`` (test AUC averaged over tasks) or a task name.

    Returns per (recipe, backbone) and overall: ``n``, ``mean_diff`` (a − b), ``wins`` (a > b),
    and overall the two-sided paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon
    signed-rank (``scipy.stats.wilcoxon``) p-values (None when undefined: < 2 pairs, or all
    differences 0).
    """
    from scipy import stats

    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list):
        raise InputError(f"{source}: not a sweep's results.json (no 'runs' list)")
    for i, r in enumerate(runs):
        missing = (
            [k for k in ("recipe", "backbone", "method", "seed") if k not in r]
            if isinstance(r, dict)
            else []
        )
        if not isinstance(r, dict) or missing or not _is_int(r["seed"]):
            what = (
                "is not an object"
                if not isinstance(r, dict)
                else f"lacks {', '.join(missing)}"
                if missing
                else f"has seed {r['seed']!r}"
            )
            raise InputError(
                f"{source}: runs[{i}] {what}; not a sweep's results.json (write it with "
                "mtopt sweep or mtopt reproduce)"
            )

    def value(res: Any) -> float | None:
        if not isinstance(res, dict) or res.get("status") != "ok":
            return None
        test = res.get("test") or {}
        if not isinstance(test, dict):
            return None
        auc = test.get("auc") or {}
        v = (
            test.get("auc_avg")
            if metric == "average"
            else (auc.get(metric) if isinstance(auc, dict) else None)
        )
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        return float(v) if math.isfinite(float(v)) else None

    labels = sorted({str(r.get("method")) for r in runs})
    found = {}
    for want in (a, b):
        match = [m for m in labels if m.lower() == want.lower()]
        if not match:
            raise InputError(
                f"{source}: no method {want!r} in this sweep; its methods: {', '.join(labels)}"
            )
        found[want] = match[0]
    vals: dict[tuple[str, str, str, int], float] = {}
    for r in runs:
        v = value(r.get("result"))
        if v is not None:
            vals[(str(r["recipe"]), str(r["backbone"]), str(r["method"]), int(r["seed"]))] = v
    cells: dict[tuple[str, str], list[float]] = {}
    for (rec, bb, m, seed), va in vals.items():
        vb = vals.get((rec, bb, found[b], seed))
        if m == found[a] and vb is not None:
            cells.setdefault((rec, bb), []).append(va - vb)
    if not cells:
        raise InputError(
            f"{source}: no (recipe, backbone, seed) with a finished run of both {a!r} and {b!r}"
            + ("" if metric == "average" else f" and a test AUC for task {metric!r}")
        )
    diffs = [d for ds in cells.values() for d in ds]

    def summary(ds: list[float]) -> dict[str, Any]:
        return {
            "n": len(ds),
            "mean_diff": float(np.mean(ds)),
            "wins": sum(d > 0 for d in ds),
            "losses": sum(d < 0 for d in ds),
        }

    overall = summary(diffs)
    t_p = w_p = None
    if len(diffs) >= 2 and any(d != 0 for d in diffs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t_p = float(stats.ttest_rel(diffs, [0.0] * len(diffs)).pvalue)
            w_p = float(stats.wilcoxon(diffs).pvalue)
    overall["t_test_p"] = t_p if t_p is not None and math.isfinite(t_p) else None
    overall["wilcoxon_p"] = w_p if w_p is not None and math.isfinite(w_p) else None
    return {
        "a": found[a],
        "b": found[b],
        "metric": metric,
        "cells": [
            {"recipe": rec, "backbone": bb, **summary(ds)}
            for (rec, bb), ds in sorted(cells.items())
        ],
        "overall": overall,
    }


def paired_markdown(res: dict[str, Any]) -> str:
    """:func:`paired_comparison` as a Markdown table plus one summary line."""
    lines = [
        f"| recipe | backbone | pairs | mean {res['a']} − {res['b']} | {res['a']} higher |",
        "|---|---|---|---|---|",
    ]
    for c in res["cells"]:
        lines.append(
            f"| {c['recipe']} | {c['backbone']} | {c['n']} | {c['mean_diff']:+.4f} | "
            f"{c['wins']}/{c['n']} |"
        )
    o = res["overall"]

    def fmt(p: float | None) -> str:
        return "undefined" if p is None else ("< 0.001" if p < 0.001 else f"= {p:.3f}")

    lines.append(
        f"| all | | {o['n']} | {o['mean_diff']:+.4f} | {o['wins']}/{o['n']} |\n\n"
        f"Test AUC ({res['metric']}), paired by (recipe, backbone, seed): paired t-test "
        f"p {fmt(o['t_test_p'])}, Wilcoxon signed-rank p {fmt(o['wilcoxon_p'])} "
        "(two-sided)."
    )
    return "\n".join(lines)
