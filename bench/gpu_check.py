"""CPU vs CUDA agreement check, prepared to run as one short script on a CUDA machine.

    python bench/gpu_check.py [--steps 60] [--out runs/gpu-check]

Three checks, each against the CPU computed in the same run (float32 model, TF32 off so that the
GPU's matmuls are IEEE float32 like the CPU's):

1. ``gram``: ``G = DᵀD`` accumulated in float64 by :func:`mtopt.optim.balance.gram64` from a float32
   ``D`` (n = 3, d = 2·10⁶) on the GPU vs the CPU: max relative difference, and the α that
   newton solves from each (the solve itself always runs on the CPU in float64).
2. ``steps``: the same seeded MMoE and batches, 20 PUB steps (dense, then with the embedding
   table row-wise) on each device: max |Δα| per step and the max relative parameter difference
   at the end.
3. ``train``: ``mtopt train recipes/quickstart.yaml`` with ``train.device=cpu`` and ``cuda``
   (``--steps`` steps): validation / test AUC, α solves ok, samples/s of each.

Without CUDA it prints ``no CUDA device: skipped`` and exits 0 (CI has no GPU). Writes
``gpu_check.json`` to ``--out``. Expected agreement: G to ~1e-6 relative (float32 products summed
in float64 in another order), α to ~1e-6, parameters after 20 steps to ~1e-4 relative, AUCs to
~1e-3 (GPU kernels reduce in another order, and Adam amplifies differences in near-zero
gradients); larger gaps mean a device bug.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def check_gram(device: str) -> dict:
    from mtopt.optim.balance import gram64
    from mtopt.solvers import solve

    g = torch.Generator().manual_seed(0)
    base = torch.randn(2_000_000, generator=g)
    D = torch.stack([base + 0.5 * torch.randn(2_000_000, generator=g) for _ in range(3)])
    G_cpu = gram64(D)
    G_dev = gram64(D.to(device))
    a_cpu = solve(G_cpu / np.linalg.norm(G_cpu), "newton").alpha
    a_dev = solve(G_dev / np.linalg.norm(G_dev), "newton").alpha
    return {
        "gram_max_rel_diff": float(np.max(np.abs(G_dev - G_cpu) / np.abs(G_cpu))),
        "alpha_max_rel_diff": float(np.max(np.abs(a_dev - a_cpu) / a_cpu)),
    }


def _pub_steps(device: str, embeddings: str | None, steps: int = 20) -> tuple[list, dict]:
    from mtopt.config import recipe_from_dict
    from mtopt.data.base import Schema
    from mtopt.registry import registry
    from mtopt.train.build import embedding_kwargs

    raw = {
        "model": {"name": "mmoe", "embed_dim": 8, "expert_dim": 64, "tower_dims": [32]},
        "method": {"name": "pub", "embeddings": embeddings},
    }
    rec = recipe_from_dict(raw, "gpu-check")
    schema = Schema(cat_cardinalities=[5000, 300], n_dense=4, task_names=["ctr", "ctcvr"])
    torch.manual_seed(0)
    model = registry.get("backbone", "mmoe")(schema, **rec.model.kwargs()).to(device)
    m = registry.get("method", "pub")(
        model, rec.optimizer.to_optimizer_config(), **embedding_kwargs(rec, model)
    )
    g = torch.Generator().manual_seed(1)
    alphas = []
    for _ in range(steps):
        batch = {
            "cat": torch.stack(
                [
                    torch.randint(0, 5000, (512,), generator=g),
                    torch.randint(0, 300, (512,), generator=g),
                ],
                1,
            ),
            "dense": torch.randn(512, 4, generator=g),
            "labels": (torch.rand(512, 2, generator=g) < 0.2).float(),
        }
        batch = {k: v.to(device) for k, v in batch.items()}
        info = m.step(model.losses(batch))
        alphas.append(info.weights)
    return alphas, {k: v.detach().cpu() for k, v in model.state_dict().items()}


def check_steps(device: str) -> dict:
    out = {}
    for emb in (None, "row-wise"):
        a_cpu, p_cpu = _pub_steps("cpu", emb)
        a_dev, p_dev = _pub_steps(device, emb)
        da = max(abs(x - y) for ac, ad in zip(a_cpu, a_dev) if ac and ad for x, y in zip(ac, ad))
        dp = max(
            float((p_dev[k] - p_cpu[k]).abs().max() / p_cpu[k].abs().max().clamp_min(1e-12))
            for k in p_cpu
            if p_cpu[k].is_floating_point()
        )
        out[emb or "balanced"] = {"alpha_max_abs_diff": da, "param_max_rel_diff": dp}
    return out


def check_train(steps: int, out: Path) -> dict:
    res = {}
    for device in ("cpu", "cuda"):
        run_dir = out / f"quickstart-{device}"
        cmd = [
            sys.executable, "-m", "mtopt", "train", str(REPO / "recipes" / "quickstart.yaml"),
            "--out", str(run_dir), "--overwrite", "-q",
            "--set", f"train.device={device}", "--set", f"train.steps={steps}",
            "--set", "output.plots=false",
        ]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO)
        s = json.loads((run_dir / "summary.json").read_text())
        res[device] = {
            "wall_seconds": time.perf_counter() - t0,
            "val_auc_avg": s["val"]["auc_avg"],
            "test_auc_avg": s["test"]["auc_avg"],
            "samples_per_second": s.get("samples_per_second"),
            "solver": s.get("solver"),
        }
    res["val_auc_avg_abs_diff"] = abs(res["cpu"]["val_auc_avg"] - res["cuda"]["val_auc_avg"])
    res["test_auc_avg_abs_diff"] = abs(res["cpu"]["test_auc_avg"] - res["cuda"]["test_auc_avg"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "gpu-check")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    report["gram"] = check_gram("cuda")
    print("gram:", report["gram"], flush=True)
    report["steps"] = check_steps("cuda")
    print("steps:", report["steps"], flush=True)
    report["train"] = check_train(args.steps, args.out)
    print("train:", json.dumps(report["train"], indent=1), flush=True)
    from mtopt.io import atomic_write_json

    atomic_write_json(args.out / "gpu_check.json", report)
    print(f"wrote {args.out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
