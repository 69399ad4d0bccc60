"""Per-step cost of PUB against LS and the gradient "floor" (issue: PUB optimizer, "Measure").

An MMoE (mtopt's ``mmoe`` backbone: 2 layers × 8 single-layer experts, 16 embedded categorical
fields, ~1e6 shared parameters; ``--backbone ple`` for mtopt's ``ple`` at its defaults, 8 shared
+ 8 task experts per layer, ~1.5e6 shared parameters) on one synthetic batch of 4096 rows,
n = 2 and n = 5 tasks, CPU. Variants (``--variants`` picks some; ``ls`` always runs), timed per
step (forward included) with interleaved repetitions:

* ``ls``           — Σ losses, one backward, ``torch.optim.Adam`` step;
* ``floor``        — forward + one backward per task on the shared parameters + one backward of
                     Σ losses on the task parameters, no optimizer math (the issue's floor);
* ``floor_fused``  — forward + one backward per task on shared *and* task parameters (summing
                     the task-parameter gradients): the same gradients in n passes instead of
                     n + 1 — what PUB does;
* ``floor_batched``— forward + one ``is_grads_batched`` backward (the alternative PUB measured);
* ``pub_k1`` / ``pub_k10`` — ``mtopt.optim.PUB`` (Adam, newton) with solve_every 1 and 10.

Each repetition runs ``--steps`` steps of every variant, interleaved step by step (so load drift
hits all variants alike, and k = 10 is amortised over one solve period); the variant order
rotates between repetitions. Prints median ms/step (wall and
process CPU time; with ``--threads 1`` CPU time is the less noisy one on a shared machine) and
the ratios; writes everything to ``--out`` as JSON. Timings on a shared CPU are noisy.

    python bench/pub_step.py --out /tmp/pub_step.json [--reps 3] [--steps 10] [--threads 1]
        [--backbone mmoe ple] [--variants floor floor_fused pub_k1 pub_k10]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.io import atomic_write_json
from mtopt.optim import PUB
from mtopt.registry import registry

FIELDS = 16
VOCAB = 2350  # → 998,920 shared parameters with mtopt's default MMoE (embed 16, experts 128)


BACKBONE = "mmoe"  # set by --backbone


def make_model(n: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    schema = Schema([VOCAB] * FIELDS, 0, [f"task{i}" for i in range(n)])
    return registry.get("backbone", BACKBONE)(schema)


def make_batch(n: int, batch: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "cat": torch.randint(0, VOCAB, (batch, FIELDS), generator=g),
        "dense": torch.zeros(batch, 0),
        "labels": (torch.rand(batch, n, generator=g) < 0.3).float(),
    }


def variants(n: int, batch: dict, seed: int) -> dict[str, Callable[[], None]]:
    out: dict[str, Callable[[], None]] = {}

    m = make_model(n, seed)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)

    def ls() -> None:
        opt.zero_grad(set_to_none=True)
        sum(m.losses(batch)).backward()
        opt.step()

    out["ls"] = ls

    m2 = make_model(n, seed)
    shared = m2.shared_parameters()
    task = [p for ps in m2.all_task_parameters() for p in ps]

    def floor() -> None:
        losses = m2.losses(batch)
        for L in losses:
            torch.autograd.grad(L, shared, retain_graph=True, allow_unused=True)
        torch.autograd.grad(sum(losses), task, allow_unused=True)

    def floor_fused() -> None:
        losses = m2.losses(batch)
        acc: list[torch.Tensor | None] = [None] * len(task)
        for i, L in enumerate(losses):
            gs = torch.autograd.grad(L, shared + task, retain_graph=i < n - 1, allow_unused=True)
            for j, g in enumerate(gs[len(shared) :]):
                if g is not None:
                    prev = acc[j]
                    acc[j] = g if prev is None else prev + g

    def floor_batched() -> None:
        L = torch.stack(m2.losses(batch))
        torch.autograd.grad(
            L, shared + task, torch.eye(n), is_grads_batched=True, allow_unused=True
        )

    out["floor"] = floor
    out["floor_fused"] = floor_fused
    out["floor_batched"] = floor_batched

    for k in (1, 10):
        mk = make_model(n, seed)
        pub = PUB(mk.shared_parameters(), mk.all_task_parameters(), lr=1e-3, solve_every=k)

        def pub_step(mk: nn.Module = mk, pub: PUB = pub) -> None:
            pub.zero_grad()
            pub.step(mk.losses(batch))

        out[f"pub_k{k}"] = pub_step
        out[f"_pub_k{k}_opt"] = pub  # type: ignore[assignment]
    return out


def run(n: int, args: argparse.Namespace) -> dict:
    batch = make_batch(n, args.batch, args.seed)
    fns = variants(n, batch, args.seed)
    if args.variants:
        keep = {"ls", *args.variants}
        fns = {k: f for k, f in fns.items() if k.lstrip("_").split("_opt")[0] in keep}
    opts = {k: fns.pop(k) for k in list(fns) if k.startswith("_")}
    names = list(fns)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    own: dict[str, list[float]] = {k: [] for k in ("pub_k1", "pub_k10") if k in fns}
    for name in names:  # warm-up (allocations, first solve, thread pools)
        for _ in range(args.warmup):
            fns[name]()
    for rep in range(args.reps):
        # interleave single steps (not blocks) so that load drift hits every variant alike;
        # each variant's repetition is the mean over ``--steps`` steps (one k=10 solve period)
        order = names[rep % len(names) :] + names[: rep % len(names)]
        w_acc = dict.fromkeys(names, 0.0)
        c_acc = dict.fromkeys(names, 0.0)
        o_acc = dict.fromkeys(own, 0.0)
        for _ in range(args.steps):
            for name in order:
                t0, c0 = time.perf_counter(), time.process_time()
                fns[name]()
                w_acc[name] += time.perf_counter() - t0
                c_acc[name] += time.process_time() - c0
                if name in own:
                    o_acc[name] += opts[f"_{name}_opt"].last.update_seconds  # type: ignore[attr-defined]
        for name in names:
            wall[name].append(w_acc[name] / args.steps * 1e3)
            cpu[name].append(c_acc[name] / args.steps * 1e3)
        for name in own:
            own[name].append(o_acc[name] / args.steps * 1e3)
        print(
            f"  n={n} rep {rep + 1}/{args.reps} cpu ms: "
            + ", ".join(f"{k} {cpu[k][-1]:.0f}" for k in names),
            flush=True,
        )

    def ratios(med: dict[str, float]) -> dict[str, float]:
        pairs = [
            ("floor", "ls"),
            ("floor_fused", "ls"),
            ("floor_fused", "floor"),
            ("floor_batched", "floor_fused"),
            ("pub_k1", "floor"),
            ("pub_k10", "floor"),
            ("pub_k1", "floor_fused"),
            ("pub_k10", "floor_fused"),
            ("pub_k1", "ls"),
            ("pub_k10", "ls"),
        ]
        return {f"{a}/{b}": med[a] / med[b] for a, b in pairs if a in med and b in med}

    med_wall = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    own_med = {k: statistics.median(v) for k, v in own.items()}
    return {
        "wall_ms_median": med_wall,
        "cpu_ms_median": med_cpu,
        "wall_ms_all": wall,
        "cpu_ms_all": cpu,
        "ratios_wall": ratios(med_wall),
        "ratios_cpu": ratios(med_cpu),
        "pub_own_wall_ms_median": own_med,
        "pub_own_fraction_of_floor_fused": {
            k: v / med_wall["floor_fused"] for k, v in own_med.items() if "floor_fused" in med_wall
        },
        "shared_params": sum(p.numel() for p in make_model(n, 0).shared_parameters()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--backbone", nargs="+", default=["mmoe"], choices=["mmoe", "ple"])
    ap.add_argument("--tasks", type=int, nargs="+", default=[2, 5])
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=["floor", "floor_fused", "floor_batched", "pub_k1", "pub_k10"],
        help="time only these (and ls); default: all",
    )
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="steps per variant per repetition")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "results": {},
    }
    global BACKBONE
    for backbone in args.backbone:
        BACKBONE = backbone
        for n in args.tasks:
            r = run(n, args)
            result["results"][f"{backbone}/{n}"] = r
            report(backbone, n, r)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


def report(backbone: str, n: int, r: dict) -> None:
    print(f"{backbone} n={n} ({r['shared_params']:,} shared params), median ms/step (wall, cpu):")
    for k in r["wall_ms_median"]:
        print(f"  {k:14s} {r['wall_ms_median'][k]:9.1f} {r['cpu_ms_median'][k]:9.1f}")
    for k in r["ratios_wall"]:
        print(f"  {k:26s} wall {r['ratios_wall'][k]:6.3f}  cpu {r['ratios_cpu'][k]:6.3f}")
    for k, v in r["pub_own_fraction_of_floor_fused"].items():
        print(f"  {k} own work (after the backward passes) / floor_fused: {v:.3f}")


if __name__ == "__main__":
    main()
