"""Table I / §III: cos(gradient, update) on task-specific and shared parameters, Diff,
and the Diff-vs-AUC pair analysis of Fig. 4."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.sweep._format import _fmt, _fmt_p, _md_table
from mtopt.sweep.config import SweepConfig
from mtopt.sweep.planning import PlannedRun
from mtopt.sweep.stats import _mean, diff_metric, welch_two_sided
from mtopt.sweep.table import Table


def diagnostics_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Table I / §III: mean cos(gradient, update) on task-specific and shared parameters per
    method, Welch's t-test (two-sided, per-step values pooled over runs) against the
    baseline, Diff (eq. (1)) and the Diff-vs-AUC pair analysis of Fig. 4 (a binomial test in
    place of the paper's χ², whose 2x2 table depends on how the pairs are oriented)."""
    from scipy import stats

    methods = list(dict.fromkeys(r.method for r in runs))
    pooled: dict[str, dict[str, list[float]]] = {}
    per_run: list[dict[str, Any]] = []
    for run, rec in zip(runs, records):
        if rec.get("status") != "ok":
            continue
        ob = rec["observations"]
        ct = [x for x in ob.get("cos_task", []) if x is not None]
        cs = [x for x in ob.get("cos_shared", []) if x is not None]
        tg = [x for x in ob.get("task_grad_cos", []) if x is not None]
        d = pooled.setdefault(run.method, {"task": [], "share": [], "tg": [], "auc": []})
        d["task"] += ct
        d["share"] += cs
        d["tg"] += tg
        if rec["test"]["auc_avg"] is not None:
            d["auc"].append(rec["test"]["auc_avg"])
        st, ss = _mean(ct), _mean(cs)
        per_run.append(
            {
                "recipe": run.recipe_label,
                "backbone": run.backbone,
                "method": run.method,
                "seed": run.seed,
                "sim_task": st,
                "sim_share": ss,
                "diff": diff_metric(st, ss),
                "auc_avg": rec["test"]["auc_avg"],
                "task_grad_cos": _mean(tg),
            }
        )
    base = pooled.get(config.baseline, {"task": [], "share": []})
    md_rows, csv_rows = [], []
    for m in methods:
        d = pooled.get(m)
        if d is None:
            md_rows.append([m, *["—"] * 8])
            continue
        st, ss = _mean(d["task"]), _mean(d["share"])
        pt = None if m == config.baseline else welch_two_sided(d["task"], base["task"])
        ps = None if m == config.baseline else welch_two_sided(d["share"], base["share"])
        diffs = [r["diff"] for r in per_run if r["method"] == m and r["diff"] is not None]
        row = {
            "method": m,
            "sim_task": st,
            "p_task": pt,
            "sim_share": ss,
            "p_share": ps,
            "diff_of_means": diff_metric(st, ss),
            "diff_mean_over_runs": _mean(diffs),
            "auc_avg": _mean(d["auc"]),
            "task_grad_cos": _mean(d["tg"]),
            "steps": len(d["share"]),
        }
        csv_rows.append(row)
        md_rows.append(
            [
                m,
                _fmt(st, 3),
                _fmt_p(pt),
                _fmt(ss, 3),
                _fmt_p(ps),
                _fmt(row["diff_of_means"], 3),
                _fmt(row["diff_mean_over_runs"], 3),
                _fmt(row["auc_avg"]),
                _fmt(row["task_grad_cos"], 3),
            ]
        )
    md = _md_table(
        [
            "Method",
            "Sim_task",
            "p",
            "Sim_share",
            "p",
            "Diff",
            "Diff (runs)",
            "avg AUC",
            "cos(g₁,g₂)",
        ],
        md_rows,
    )
    # Fig. 4: within the same recipe/backbone/seed, does higher AUC go with lower Diff?
    # Each unordered pair of methods is counted in both orders (so the 2x2 table does not
    # depend on the order methods are listed in); the test is a two-sided binomial test of the
    # share of pairs where the higher-AUC method has the lower Diff against 1/2.
    cont = np.zeros((2, 2), dtype=int)
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in per_run:
        cells.setdefault((r["recipe"], r["backbone"], r["seed"]), []).append(r)
    reverse_pairs = 0
    pairs = 0
    for group in cells.values():
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                a, b = group[i], group[j]
                if None in (a["auc_avg"], b["auc_avg"], a["diff"], b["diff"]):
                    continue
                if a["auc_avg"] == b["auc_avg"] or a["diff"] == b["diff"]:
                    continue
                x, y = int(a["auc_avg"] > b["auc_avg"]), int(a["diff"] > b["diff"])
                cont[x, y] += 1
                cont[1 - x, 1 - y] += 1
                pairs += 1
                reverse_pairs += int(x != y)
    reverse = reverse_pairs / pairs if pairs else None
    binom = float(stats.binomtest(reverse_pairs, pairs, 0.5).pvalue) if pairs else None
    md += (
        "\n\nSim: mean over training steps (pooled over runs) of the cosine between the gradient "
        "a method feeds its optimiser and the parameter update, on task-specific (towers) and "
        "shared parameters. p: two-sided Welch t-test of the per-step values against "
        f"{config.baseline} (steps are autocorrelated, so these p-values are optimistic). Diff = "
        "2|Sim_task − Sim_share| / |Sim_task + Sim_share| (paper eq. (1)) of the means; "
        "'Diff (runs)' averages the per-run Diff. cos(g₁,g₂): mean cosine between the two "
        "tasks' shared-parameter gradients (the conflict level)."
    )
    if pairs:
        md += (
            f"\n\nFig. 4 analogue: {pairs} pairs of methods trained on the same recipe, backbone "
            f"and seed; in {reverse_pairs} ({100 * (reverse or 0):.0f}%) the method with the "
            f"higher average AUC has the lower Diff (two-sided binomial test against 50%: p = "
            f"{_fmt_p(binom)}). Both orders of each pair: [[AUC<, Diff<; AUC<, Diff>], "
            f"[AUC>, Diff<; AUC>, Diff>]] = {cont.tolist()}."
        )
    data = {
        "methods": csv_rows,
        "runs": per_run,
        "contingency": cont.tolist(),
        "pairs": pairs,
        "reverse_pairs": reverse_pairs,
        "reverse_share": reverse,
        "binomial_p": binom,
    }
    return Table(f"{config.name}: gradient vs update", md, csv_rows, data)
