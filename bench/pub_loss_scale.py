"""How much a 1000× larger loss on one task changes PUB's shared step (DESIGN §2.2).

At the first step (zero moments) Adam's per-task update ``gᵢ/(|gᵢ| + eps)`` ignores the loss
scale, so D, α and the shared step are unchanged. Afterwards PUB's moments are fed ``Σαᵢgᵢ``,
which the big task dominates, so the steps differ. This script measures by how much, on a small
mtopt MMoE with two tasks and identical batches: for each configuration, two runs from the same
initialisation, losses ``(L₁, L₂)`` vs ``(L₁, 1000·L₂)``, and per step t

* ``rel``: ``‖Δθ_b(t) − Δθ_a(t)‖ / ‖Δθ_a(t)‖`` of the shared-parameter step,
* ``cos``: cosine between the two shared steps.

(The trajectories themselves drift apart, so late steps compare different points.) The
``eps1e-30`` rows make Adam's eps negligible, to show that the first-step difference is eps
alone: many coordinates of a recommendation model's gradient are as small as eps = 1e-8.

    python bench/pub_loss_scale.py --out /tmp/pub_loss_scale.json [--steps 50]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mtopt.data.base import Schema
from mtopt.io import atomic_write_json
from mtopt.optim import PUB
from mtopt.registry import registry

CONFIGS = {
    "ls-adam": None,
    "pub-adam-frobenius": dict(alpha_scale="frobenius"),
    "pub-adam-frobenius-eps1e-30": dict(alpha_scale="frobenius", eps=1e-30),
    "pub-adam-exact": dict(alpha_scale="exact"),
    "pub-adatask-frobenius": dict(alpha_scale="frobenius", umm="adatask"),
    "pub-adatask-eps1e-30": dict(alpha_scale="frobenius", umm="adatask", eps=1e-30),
}


def batches(steps: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        cat = torch.randint(0, 50, (256, 8), generator=g)
        w = torch.sin(cat.float()).sum(1, keepdim=True)
        p = torch.sigmoid(torch.cat([w, 0.5 * w - 1.0], 1))
        out.append(
            {
                "cat": cat,
                "dense": torch.zeros(256, 0),
                "labels": (torch.rand(256, 2, generator=g) < p).float(),
            }
        )
    return out


def run(cfg: dict | None, scale: float, data: list[dict], seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    model = registry.get("backbone", "mmoe")(Schema([50] * 8, 0, ["ctr", "ctcvr"]), expert_dim=32)
    shared = model.shared_parameters()
    if cfg is None:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = PUB(shared, model.all_task_parameters(), lr=1e-3, **cfg)
    steps = []
    for batch in data:
        before = torch.cat([p.detach().reshape(-1) for p in shared])
        losses = model.losses(batch)
        losses = [losses[0], scale * losses[1]]
        opt.zero_grad()
        if cfg is None:
            sum(losses).backward()
            opt.step()
        else:
            opt.step(losses)
        steps.append(before - torch.cat([p.detach().reshape(-1) for p in shared]))
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = batches(args.steps, args.seed)
    report = {}
    show = [1, 2, 3, 5, 10, 20, args.steps]
    print(f"{'config':28s} " + " ".join(f"{'t=' + str(t):>14s}" for t in show))
    for name, cfg in CONFIGS.items():
        a = run(cfg, 1.0, data, args.seed)
        b = run(cfg, 1000.0, data, args.seed)
        rel = [float((y - x).norm() / x.norm()) for x, y in zip(a, b)]
        cos = [float(torch.nn.functional.cosine_similarity(x, y, dim=0)) for x, y in zip(a, b)]
        report[name] = {"rel": rel, "cos": cos}
        cells = " ".join(f"{rel[t - 1]:6.1e}/{cos[t - 1]:+.3f}" for t in show)
        print(f"{name:28s} {cells}")
    print("cells: rel / cos of the shared step, (1, 1000) vs (1, 1) loss scales")
    atomic_write_json(args.out, {"config": {"steps": args.steps, "seed": args.seed}, **report})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
