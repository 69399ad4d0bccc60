"""Gradient level vs update level, per weighting (issue #17, docs/results.md).

Reads the runs of a ``mtopt sweep`` (folder ``RUNS``: each run's ``recipe.yaml`` and
``result.json``) and prints one Markdown table: for each weighting and regime the mean ± std
over seeds of the test AUC (average of the tasks, best-validation checkpoint) with the
weighting on the task gradients (``mgda``, ``imtl-g``, ``cagrad``, ``upgrad``, ``aligned-mtl``,
``fairgrad``, ``nashmtl``) and on PUB's per-task updates (``pub[weighting=...]``; ``pub`` for
Nash), the paired difference update − gradient (runs of one recipe and seed share data,
initialisation and batch order) and how many seeds the update level wins.

    python bench/weighting_levels.py RUNS [--seeds 0,1]

Runs at another learning rate than the recipes' 2e-3 are kept apart (``ls@0.004`` is printed
as a reference row when present).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import yaml

#: weighting -> (gradient-level method, PUB weighting)
PAIRS = {
    "MGDA": ("mgda", "mgda"),
    "IMTL-G": ("imtl-g", "imtl-g"),
    "CAGrad": ("cagrad", "cagrad"),
    "UPGrad": ("upgrad", "upgrad"),
    "Aligned-MTL": ("aligned-mtl", "aligned-mtl"),
    "FairGrad": ("fairgrad", "fairgrad"),
    "Nash": ("nashmtl", "nash"),
}


def load(runs: Path) -> dict[tuple[str, str, int], float]:
    out = {}
    for d in sorted(runs.iterdir()):
        res, rec = d / "result.json", d / "recipe.yaml"
        if not (res.exists() and rec.exists()):
            continue
        r = json.loads(res.read_text())
        if r.get("status") != "ok":
            continue
        recipe = yaml.safe_load(rec.read_text())
        m = recipe["method"]
        name = m["name"]
        if name == "pub":
            name = f"pub:{m.get('weighting') or 'nash'}"
        lr = float(recipe["optimizer"]["lr"])
        if lr != 0.002:  # the recipes' common rate; other rates are kept apart
            name = f"{name}@{lr:g}"
        regime = d.name.split("__", 1)[0]
        out[(regime, name, int(recipe["train"]["seed"]))] = float(r["test"]["auc_avg"])
    return out


def fmt(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=Path)
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    auc = load(args.runs)
    regimes = sorted({k[0] for k in auc})
    head = (
        "| weighting | "
        + " | ".join(
            f"{r}: gradient | {r}: update | {r}: update − gradient (wins)" for r in regimes
        )
        + " | mean update − gradient |"
    )
    print(head)
    print("|" + "---|" * (2 + 3 * len(regimes)))
    for label, (grad, upd) in PAIRS.items():
        cells, diffs = [], defaultdict(list)
        for r in regimes:
            g = [auc.get((r, grad, s)) for s in seeds]
            u = [auc.get((r, f"pub:{upd}", s)) for s in seeds]
            pairs = [(a, b) for a, b in zip(g, u) if a is not None and b is not None]
            if not pairs:
                cells += ["–", "–", "–"]
                continue
            d = [b - a for a, b in pairs]
            diffs["all"] += d
            wins = sum(x > 0 for x in d)
            cells += [fmt([a for a, _ in pairs]), fmt([b for _, b in pairs]),
                      f"{statistics.mean(d):+.4f} ({wins}/{len(d)})"]  # fmt: skip
        mean = f"{statistics.mean(diffs['all']):+.4f}" if diffs["all"] else "–"
        print(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    ls = []
    for r in regimes:
        xs = [auc[(r, "ls", s)] for s in seeds if (r, "ls", s) in auc]
        ls += [fmt(xs) if xs else "–", "", ""]
    print("| LS (plain MMoE, reference) | " + " | ".join(ls) + " | |")
    ls2 = []
    for r in regimes:
        xs = [auc[(r, "ls@0.004", s)] for s in seeds if (r, "ls@0.004", s) in auc]
        ls2 += [fmt(xs) if xs else "–", "", ""]
    if any(x not in ("–", "") for x in ls2):
        print("| LS at lr 4e-3 (twice the step, reference) | " + " | ".join(ls2) + " | |")


if __name__ == "__main__":
    main()
