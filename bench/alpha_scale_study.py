"""PUB's ``alpha_scale``: ``exact`` vs ``frobenius`` in real training (training-pipeline issue,
item 6).

``exact`` solves Algorithm 1's ``DᵀDα = 1/α`` on the raw Gram matrix (Yuan, Cai & Dong, ICDM
2024, Alg. 1 line 13): the shared step then has norm ``lr·√n`` whatever the size of the per-task
updates and the moments are fed ``Σαᵢgᵢ`` with ``αᵢ ~ 1/‖Δθᵢ‖``. ``frobenius`` solves on
``DᵀD/‖DᵀD‖_F`` as the authors' code does, which multiplies α by ``√‖DᵀD‖_F`` (DESIGN §2.3).

Protocol: the quickstart recipe (MMoE on ``synthetic-ranking``), trained with both scales on
three synthetic regimes × ``--seeds`` training seeds (model initialisation and batch order; the
data of a regime is fixed, so each seed is a paired comparison). The model kept is the one with
the best average validation AUC (as in the paper); the decision is made on the mean *validation*
AUC over all regimes and seeds, test AUC is reported beside it. Regimes:

- ``quickstart``: the quickstart data (task correlation 0.5);
- ``conflict``: task correlation −0.5 (the tasks' latent directions at 120°);
- ``imbalance``: the paper's CTR loss ≈ 23× CTCVR loss (``loss_ratio: 23``).

Writes ``OUT/results.json`` (one row per run), ``OUT/table.md`` and prints the table.

    python bench/alpha_scale_study.py --out runs/alpha_scale [--seeds 3] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from mtopt.config import recipe_from_dict
from mtopt.io import atomic_write_json, atomic_write_text
from mtopt.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
SCALES = ("exact", "frobenius")
REGIMES: dict[str, dict[str, Any]] = {
    "quickstart": {},
    "conflict": {"task_correlation": -0.5},
    "imbalance": {"loss_ratio": 23.0},
}


def run_one(
    regime: str, scale: str, seed: int, out: Path, epochs: int | None, threads: int
) -> dict[str, Any]:
    """Train one (regime, scale, seed) and return its row."""
    raw = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
    raw["data"].update(REGIMES[regime])
    raw["method"]["alpha_scale"] = scale
    raw["train"]["seed"] = seed
    raw["train"]["threads"] = threads
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    raw["output"] = {"plots": False, "progress": False}
    recipe = recipe_from_dict(raw, "quickstart.yaml")
    t0 = time.perf_counter()
    s = Trainer(recipe, out / f"{regime}-{scale}-s{seed}", source="quickstart.yaml").run(
        overwrite=True
    )
    return {
        "regime": regime,
        "alpha_scale": scale,
        "seed": seed,
        "val_auc_avg": s["val"]["auc_avg"],
        "test_auc_avg": s["test"]["auc_avg"],
        "val_auc": s["val"]["auc"],
        "test_auc": s["test"]["auc"],
        "best_epoch": s["best_epoch"],
        "alpha_mean": {t: a["mean"] for t, a in (s["alpha"] or {}).items()},
        "solver_status": s["solver_status"],
        "seconds": time.perf_counter() - t0,
    }


def _ms(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"{xs[0]:.4f}" if xs else "—"
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}"


def table(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Markdown table and the decision (by mean validation AUC over all runs)."""
    lines = [
        "| regime | alpha_scale | val AUC avg (mean ± sd) | test AUC avg (mean ± sd) | "
        "val AUC per task (mean) | mean α per task | paired Δval (frob − exact) |",
        "|---|---|---|---|---|---|---|",
    ]
    regimes = list(dict.fromkeys(r["regime"] for r in rows))
    for regime in regimes:
        rr = [r for r in rows if r["regime"] == regime]
        by_seed = {(r["alpha_scale"], r["seed"]): r["val_auc_avg"] for r in rr if r["val_auc_avg"]}
        deltas = [
            by_seed[("frobenius", s)] - by_seed[("exact", s)]
            for s in sorted({r["seed"] for r in rr})
            if ("frobenius", s) in by_seed and ("exact", s) in by_seed
        ]
        for scale in SCALES:
            sr = [r for r in rr if r["alpha_scale"] == scale]
            if not sr:
                continue
            tasks = list(sr[0]["val_auc"])
            per_task = ", ".join(
                f"{t} {statistics.mean(r['val_auc'][t] for r in sr):.4f}" for t in tasks
            )
            alpha = ", ".join(
                f"{t} {statistics.mean(r['alpha_mean'][t] for r in sr):.3g}"
                for t in sr[0]["alpha_mean"]
            )
            delta = _ms(deltas) if scale == "frobenius" else ""
            lines.append(
                f"| {regime} | {scale} | {_ms([r['val_auc_avg'] for r in sr])} | "
                f"{_ms([r['test_auc_avg'] for r in sr])} | {per_task} | {alpha} | {delta} |"
            )
    overall = {
        scale: {
            "val": statistics.mean(r["val_auc_avg"] for r in rows if r["alpha_scale"] == scale),
            "test": statistics.mean(r["test_auc_avg"] for r in rows if r["alpha_scale"] == scale),
            "runs": sum(1 for r in rows if r["alpha_scale"] == scale),
        }
        for scale in SCALES
        if any(r["alpha_scale"] == scale for r in rows)
    }
    for scale, o in overall.items():
        lines.append(
            f"| **all** | {scale} | **{o['val']:.4f}** | {o['test']:.4f} | | | ({o['runs']} runs) |"
        )
    winner = max(overall, key=lambda k: overall[k]["val"]) if overall else None
    return "\n".join(lines) + "\n", {"overall": overall, "winner_by_val": winner}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/alpha_scale"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="override the quickstart's epochs")
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for regime in args.regimes.split(","):
        for seed in range(args.seeds):
            for scale in SCALES:
                row = run_one(regime, scale, seed, args.out, args.epochs, args.threads)
                rows.append(row)
                print(
                    f"{regime:10s} {scale:9s} seed {seed}: val {row['val_auc_avg']:.4f} "
                    f"test {row['test_auc_avg']:.4f} ({row['seconds']:.1f} s)",
                    flush=True,
                )
                atomic_write_json(args.out / "results.json", {"rows": rows})
    md, decision = table(rows)
    decision["seconds"] = time.perf_counter() - t0
    atomic_write_json(args.out / "results.json", {"rows": rows, "decision": decision})
    atomic_write_text(args.out / "table.md", md)
    print(md)
    print(json.dumps(decision, indent=1))


if __name__ == "__main__":
    main()
