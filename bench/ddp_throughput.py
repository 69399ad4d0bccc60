"""Training throughput (samples/s) of 1 vs N processes (torchrun, gloo on CPU); peak memory of
PUB vs LS with a large embedding table.

    python bench/ddp_throughput.py [--nproc 1 2] [--steps 30] [--method pub] [--out runs/bench]
    python bench/ddp_throughput.py --memory [--rows 1000000]

Each configuration runs ``mtopt train recipes/quickstart.yaml`` for ``--steps`` steps with one
torch thread per process (``train.threads=1``) — N processes at ``batch_size`` B train on the
same global batches as one process — and reads ``samples_per_second`` from summary.json (the
training loop only: the final evaluation is not counted). Start-up (imports, data generation)
is excluded. On a 2-core machine shared with other work expect little or no gain: the step is
small and the collectives (gloo over loopback) cost about as much as the compute they split.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(nproc: int, steps: int, method: str, batch: int, out: Path) -> dict:
    """One training run; returns its summary plus the wall time of the command."""
    args = [
        "-m",
        "mtopt",
        "train",
        str(REPO / "recipes" / "quickstart.yaml"),
        "--out",
        str(out),
        "--overwrite",
        "-q",
        "--set",
        f"train.steps={steps}",
        "--set",
        f"method.name={method}",
        "--set",
        f"optimizer.batch_size={batch}",
        "--set",
        "train.threads=1",
        "--set",
        "output.plots=false",
    ]
    if method != "pub":
        args += ["--set", "method.solver=null", "--set", "method.solve_every=null"]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
        cmd += [f"--master-port={_port()}", *args]
    else:
        cmd = [sys.executable, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    summary["wall_seconds"] = wall
    return summary


MEMORY_CASES = [("ls", None), ("pub", None), ("pub", "row-wise"), ("pub", "plain")]


def memory_one(method: str, embeddings: str | None, rows: int) -> None:
    """Peak RSS of 3 steps of ``method`` on a shared-bottom model with a ``rows`` × 16 table
    (2 tasks, batch 1024, Adam); run in a fresh process per case (prints one line)."""
    import resource

    import torch

    from mtopt.config import recipe_from_dict
    from mtopt.data.base import Schema
    from mtopt.registry import registry
    from mtopt.train.build import embedding_kwargs

    torch.set_num_threads(1)
    raw = {"model": {"name": "shared-bottom", "bottom_dims": [32], "embed_dim": 16}}
    raw["method"] = {"name": method, "embeddings": embeddings}
    rec = recipe_from_dict(raw, "memory")
    schema = Schema(cat_cardinalities=[rows], n_dense=4, task_names=["ctr", "ctcvr"])
    torch.manual_seed(0)
    model = registry.get("backbone", "shared-bottom")(schema, **rec.model.kwargs())
    m = registry.get("method", method)(
        model, rec.optimizer.to_optimizer_config(), **embedding_kwargs(rec, model)
    )
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        batch = {
            "cat": torch.randint(0, rows, (1024, 1), generator=g),
            "dense": torch.randn(1024, 4, generator=g),
            "labels": (torch.rand(1024, 2, generator=g) < 0.3).float(),
        }
        m.step(model.losses(batch))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{method:4s} embeddings={embeddings or 'balanced':9s} peak RSS {peak:7.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--method", default="pub")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench-ddp")
    ap.add_argument("--memory", action="store_true", help="peak memory of PUB vs LS instead")
    ap.add_argument("--rows", type=int, default=1_000_000, help="embedding rows (--memory)")
    ap.add_argument("--memory-one", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.memory_one:
        emb = None if a.memory_one[1] == "balanced" else a.memory_one[1]
        return memory_one(a.memory_one[0], emb, a.rows)
    if a.memory:
        print(f"{a.rows} x 16 table ({a.rows * 16 * 4 / 2**20:.0f} MiB), shared-bottom, 2 tasks")
        for method, emb in MEMORY_CASES:
            cmd = [sys.executable, __file__, "--rows", str(a.rows), "--memory-one", method]
            subprocess.run([*cmd, emb or "balanced"], check=True, env={**os.environ})
        return None
    print(f"method {a.method}, batch {a.batch}, {a.steps} steps, {os.cpu_count()} CPUs")
    print("procs  samples/s  train s  wall s  val AUC avg")
    for n in a.nproc:
        for _ in range(a.repeats):
            s = run(n, a.steps, a.method, a.batch, a.out / f"n{n}")
            auc = s["val"]["auc_avg"]
            print(
                f"{n:5d}  {s['samples_per_second']:9.0f}  {s['seconds']:7.2f}  "
                f"{s['wall_seconds']:6.1f}  {auc if auc is None else round(auc, 4)}"
            )


if __name__ == "__main__":
    main()
