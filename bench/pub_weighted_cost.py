"""Step cost of PUB with one backward between solves (``between_solves="weighted"``).

The registered methods, as the trainer calls them (forward, ``method.step(losses)``), on one
synthetic batch of 4096 rows: mtopt's default MMoE (2 layers × 8 experts of width 128) or PLE,
16 embedded categorical fields (~1e6 shared parameters), n tasks:

* ``ls``            — Σ losses, one backward, torch Adam (the backbone's cost);
* ``pub_k10``       — PUB solving every 10 steps, Algorithm 1's per-task path (n backward passes
                      every step);
* ``pub_w_k10``     — the same with ``between_solves="weighted"`` (one backward on the 9 steps
                      in 10 that do not solve);
* ``nashmtl_k10``   — NashMTL solving every 10 steps (n backward passes on solve steps only).

Every variant first takes ``--warmup`` steps (default 60: past the weighted path's exact start,
``weighted_tol=0.02`` → Adam's first 51 steps). Then repetitions of one solve period (10 steps):
the variants take single steps in turn (so load drift hits all alike), the order rotating
between repetitions, and process CPU time per step is recorded (``--threads 1``: CPU time is
the compute cost and is far less disturbed by other processes than wall time). Prints the
median ms/step and ratios to ``ls``.

    python bench/pub_weighted_cost.py --out runs/weighted_cost.json [--backbones mmoe ple]
        [--tasks 2 5] [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pub_step import FIELDS, VOCAB, make_batch  # the same model and batch as bench/pub_step.py

from mtopt.data.base import Schema
from mtopt.io import atomic_write_json
from mtopt.optimizer_config import OptimizerConfig
from mtopt.registry import registry

PERIOD = 10

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "ls": ("ls", {}),
    "pub_k10": ("pub", {"solve_every": PERIOD}),
    "pub_w_k10": ("pub", {"solve_every": PERIOD, "between_solves": "weighted"}),
    "nashmtl_k10": ("nashmtl", {"update_weights_every": PERIOD}),
}


def make_step(backbone: str, n: int, variant: str, batch: dict, seed: int) -> Callable[[], Any]:
    torch.manual_seed(seed)
    schema = Schema([VOCAB] * FIELDS, 0, [f"task{i}" for i in range(n)])
    model = registry.get("backbone", backbone)(schema)
    name, hp = VARIANTS[variant]
    method = registry.get("method", name)(model, OptimizerConfig(lr=1e-3), **hp)

    def step() -> Any:
        return method.step(model.losses(batch))

    return step


def run(backbone: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    batch = make_batch(n, args.batch, args.seed)
    steps = {v: make_step(backbone, n, v, batch, args.seed) for v in VARIANTS}
    for fn in steps.values():
        for _ in range(args.warmup):
            fn()
    cpu: dict[str, list[float]] = {v: [] for v in steps}
    names = list(steps)
    for rep in range(args.reps):
        # single steps interleaved (load drift hits every variant alike); each variant's
        # repetition is its mean over one solve period (PERIOD steps, one solve)
        order = names[rep % len(names) :] + names[: rep % len(names)]
        acc = dict.fromkeys(names, 0.0)
        for _ in range(PERIOD):
            for v in order:
                c0 = time.process_time()
                steps[v]()
                acc[v] += time.process_time() - c0
        for v in names:
            cpu[v].append(acc[v] / PERIOD * 1e3)
        print(
            f"  {backbone} n={n} rep {rep + 1}/{args.reps} cpu ms/step: "
            + ", ".join(f"{v} {cpu[v][-1]:.0f}" for v in names),
            flush=True,
        )
    med = {v: statistics.median(x) for v, x in cpu.items()}
    per_rep = {v: [a / b for a, b in zip(cpu[v], cpu["ls"])] for v in names}
    return {
        "cpu_ms_median": med,
        "cpu_ms_all": cpu,
        "ratio_to_ls": {v: med[v] / med["ls"] for v in med},
        "ratio_to_ls_per_rep": per_rep,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--backbones", nargs="+", default=["mmoe", "ple"])
    ap.add_argument("--tasks", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out: dict[str, Any] = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "torch": torch.__version__,
        "machine": platform.machine(),
        "results": {},
    }
    rows = []
    for bb in args.backbones:
        for n in args.tasks:
            r = run(bb, n, args)
            out["results"][f"{bb}-n{n}"] = r
            rows.append((bb, n, r))
    print("| backbone | n | " + " | ".join(f"{v} ms (×LS)" for v in VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    for bb, n, r in rows:
        cells = [f"{r['cpu_ms_median'][v]:.0f} ({r['ratio_to_ls'][v]:.2f}×)" for v in VARIANTS]
        print(f"| {bb} | {n} | " + " | ".join(cells) + " |")
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
