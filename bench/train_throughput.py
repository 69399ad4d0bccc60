"""Training throughput (training-pipeline issue, "Measure and report").

1. **Model throughput**, samples/s of one training step (forward + method step) through the
   registered methods, on AliExpress-shaped synthetic data (``synthetic-ranking``,
   ``preset: aliexpress``: 16 categorical fields, 63 dense features), batch 4096, for MMoE and
   PLE (mtopt's defaults = the PUB paper's §VI-A2 shapes):

   * ``ls``      — the ``ls`` method (Σ losses, one backward, Adam);
   * ``floor``   — forward + one backward per task on the shared parameters + one backward of
     Σ losses on the task parameters, no optimiser math (the PUB optimizer issue's floor);
   * ``floor_fused`` — forward + one backward per task on shared *and* task parameters (the
     same gradients in n passes; what PUB does);
   * ``pub_k1`` / ``pub_k10`` — the ``pub`` method, ``solve_every`` 1 and 10.

   Batches are pre-fetched, so data loading is not in these numbers. Variants are interleaved
   (the order rotates between repetitions); medians are reported, with ratios to ``ls`` and to
   the floor, both for wall time and for CPU time of the process (with ``--threads 1`` the
   CPU time is the compute cost and is much less disturbed by other processes on a shared
   machine than wall time).
2. **Loader throughput**: samples/s of iterating the training split alone (shuffled) — the
   in-memory synthetic data, and the streaming ``aliexpress`` CSV reader on a generated file —
   against the model throughput of PUB (goal: loader ≥ 3× model).
3. **Peak RSS** of a process that streams a ``--rss-rows``-row AliExpress-schema CSV
   (``train.csv``, plus a ``test.csv`` of a tenth of it) through the ``aliexpress`` dataset:
   construction (the first pass: validation, index, binary cache), every training batch with
   ``--rss-train-steps`` PUB steps on MMoE, and the validation and test splits — in a fresh
   subprocess (its ``VmHWM``: ``ru_maxrss`` would include the parent's peak, which Linux
   carries over across fork + exec).
4. **First pass**, rows/s of building the ``aliexpress`` dataset from a ``--first-pass-rows``
   CSV (and a test file of a tenth of it) with no caches: the block index, the validation of
   every row, the vocabulary and the binary cache — with each CSV engine (``data.csv_engine``:
   ``numpy``, ``np.loadtxt``; ``polars``, when installed) on the same files in the same
   process, interleaved (the order alternates between repetitions), medians of wall time and
   of CPU time of the process (polars uses several threads, so its CPU rate is lower than its
   wall rate on an idle machine; polars is imported before the first timing). It also checks
   that both engines wrote the same cache bytes.

Timings on a shared CPU are noisy; the JSON keeps every repetition.

    python bench/train_throughput.py --out runs/throughput.json [--reps 3] [--steps 5]
        [--threads 1] [--csv-rows 200000] [--rss-rows 2000000]
        [--first-pass-rows 200000] [--first-pass-reps 3] [--first-pass-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mtopt.io import atomic_write_json
from mtopt.methods.base import OptimizerConfig
from mtopt.registry import registry

BATCH = 4096


def make_data(rows: int, seed: int = 0) -> Any:
    return registry.get("dataset", "synthetic-ranking")(
        preset="aliexpress", seed=seed, n_train=rows, n_val=0, n_test=0
    )


def variants(backbone: str, schema: Any, seed: int) -> dict[str, tuple[Any, Callable]]:
    """name -> (model, step(batch)) for every variant, each on its own freshly seeded model."""
    out: dict[str, tuple[Any, Callable]] = {}
    cfg = OptimizerConfig()

    def fresh() -> Any:
        torch.manual_seed(seed)
        return registry.get("backbone", backbone)(schema)

    m = fresh()
    ls = registry.get("method", "ls")(m, cfg)
    out["ls"] = (m, lambda b, m=m, ls=ls: ls.step(m.losses(b)))

    mf = fresh()
    shared = mf.shared_parameters()
    task = [p for ps in mf.all_task_parameters() for p in ps]

    def floor(b: dict, m: Any = mf) -> None:
        losses = m.losses(b)
        for L in losses:
            torch.autograd.grad(L, shared, retain_graph=True, allow_unused=True)
        torch.autograd.grad(sum(losses), task, allow_unused=True)

    def floor_fused(b: dict, m: Any = mf) -> None:
        losses = m.losses(b)
        n = len(losses)
        for i, L in enumerate(losses):
            torch.autograd.grad(L, shared + task, retain_graph=i < n - 1, allow_unused=True)

    out["floor"] = (mf, floor)
    out["floor_fused"] = (mf, floor_fused)
    for k in (1, 10):
        mp = fresh()
        pub = registry.get("method", "pub")(mp, cfg, solve_every=k)
        out[f"pub_k{k}"] = (mp, lambda b, m=mp, pub=pub: pub.step(m.losses(b)))
    return out


def model_throughput(backbone: str, args: argparse.Namespace) -> dict[str, Any]:
    data = make_data(BATCH * args.steps, args.seed)
    batches = list(data.batches("train", BATCH, shuffle=True, seed=args.seed))
    fns = variants(backbone, data.schema, args.seed)
    names = list(fns)
    for name in names:  # warm-up
        for b in batches[: args.warmup]:
            fns[name][1](b)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            step = fns[name][1]
            t0, c0 = time.perf_counter(), time.process_time()
            for b in batches:
                step(b)
            rows = len(batches) * BATCH
            wall[name].append(rows / (time.perf_counter() - t0))
            cpu[name].append(rows / (time.process_time() - c0))
        print(
            f"  {backbone} rep {rep + 1}/{args.reps}: "
            + ", ".join(f"{k} {wall[k][-1]:.0f} ({cpu[k][-1]:.0f})" for k in names)
            + " samples/s wall (per CPU second)",
            flush=True,
        )
    m0 = fns["ls"][0]
    out: dict[str, Any] = {
        "shared_params": sum(p.numel() for p in m0.shared_parameters()),
        "params": sum(p.numel() for p in m0.parameters()),
    }
    for label, data in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in data.items()}
        # time ratios (higher = slower): t_variant / t_reference = sps_reference / sps_variant
        out[label] = {
            "samples_per_s_median": med,
            "samples_per_s_all": data,
            "time_ratio_to_ls": {k: med["ls"] / v for k, v in med.items()},
            "time_ratio_to_floor": {k: med["floor"] / v for k, v in med.items()},
            "time_ratio_to_floor_fused": {k: med["floor_fused"] / v for k, v in med.items()},
        }
    return out


def loader_throughput(dataset: Any, max_batches: int | None = None) -> dict[str, float]:
    t0 = time.perf_counter()
    rows = 0
    for i, b in enumerate(dataset.batches("train", BATCH, shuffle=True, seed=0)):
        rows += int(b["labels"].shape[0])
        if max_batches is not None and i + 1 >= max_batches:
            break
    dt = time.perf_counter() - t0
    return {"rows": rows, "seconds": dt, "samples_per_s": rows / dt}


def aliexpress_available() -> bool:
    if not registry.has("dataset", "aliexpress"):
        return False
    try:
        from mtopt.data import aliexpress  # noqa: F401
    except ImportError:
        return False
    return hasattr(aliexpress, "write_synthetic_aliexpress_csv")


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def first_pass_throughput(folder: Path, reps: int) -> dict[str, Any]:
    """Rows/s of the aliexpress first pass per CSV engine (section 4 of the module docs)."""
    from mtopt.data.aliexpress.fastparse import polars_available

    engines = ["numpy", "polars"] if polars_available() else ["numpy"]
    if "polars" in engines:
        import polars  # noqa: F401  (its one-time import, ~0.3 s, is not part of a pass)
    wall: dict[str, list[float]] = {e: [] for e in engines}
    cpu: dict[str, list[float]] = {e: [] for e in engines}
    digests: dict[str, set[str]] = {e: set() for e in engines}
    rows = 0
    for rep in range(reps):
        for engine in engines if rep % 2 == 0 else engines[::-1]:
            for p in folder.glob("*.mtopt-*"):
                p.unlink()
            t0, c0 = time.perf_counter(), time.process_time()
            ds = registry.get("dataset", "aliexpress")(path=str(folder), csv_engine=engine)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            rows = sum(f.n_rows for f in ds.files.values())
            wall[engine].append(rows / dt)
            cpu[engine].append(rows / dc)
            digests[engine].add(_digest(sorted(folder.glob("*.mtopt-cache.bin"))))
            print(
                f"  first pass rep {rep + 1}/{reps}, {engine}: {wall[engine][-1]:.0f} rows/s "
                f"wall ({cpu[engine][-1]:.0f} per CPU second)",
                flush=True,
            )
    out: dict[str, Any] = {
        "rows": rows,
        "csv_bytes": sum(p.stat().st_size for p in folder.glob("*.csv")),
        "engines": {
            e: {
                "rows_per_s_median": statistics.median(wall[e]),
                "rows_per_s_all": wall[e],
                "rows_per_cpu_s_median": statistics.median(cpu[e]),
                "rows_per_cpu_s_all": cpu[e],
            }
            for e in engines
        },
        "same_cache_bytes": len(set().union(*digests.values())) == 1,
    }
    if "polars" in engines:
        med = {e: out["engines"][e]["rows_per_s_median"] for e in engines}
        out["polars_speedup_wall"] = med["polars"] / med["numpy"]
    return out


_RSS_CHILD = """
import json, resource, sys, time, torch
from mtopt.registry import registry
from mtopt.methods.base import OptimizerConfig
path, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
def peak_rss_mib():
    # VmHWM: peak RSS of this process image (ru_maxrss would include the parent's peak, which
    # Linux carries over across fork + exec)
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
ds = registry.get("dataset", "aliexpress")(path=path)
first_pass = time.perf_counter() - t0
rss_after_first_pass = peak_rss_mib()
t0 = time.perf_counter()
rows = 0
model = registry.get("backbone", "mmoe")(ds.schema) if steps else None
pub = registry.get("method", "pub")(model, OptimizerConfig(), solve_every=10) if steps else None
for i, b in enumerate(ds.batches("train", 4096, shuffle=True, seed=0)):
    rows += int(b["labels"].shape[0])
    if i < steps:
        pub.step(model.losses(b))
for split in ("val", "test"):
    for b in ds.batches(split, 4096):
        rows += int(b["labels"].shape[0])
dt = time.perf_counter() - t0
print(json.dumps({"rows": rows, "seconds": dt, "first_pass_seconds": first_pass,
                  "peak_rss_after_first_pass_mib": rss_after_first_pass,
                  "peak_rss_mib": peak_rss_mib()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--backbones", default="mmoe,ple")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5, help="batches of 4096 per variant and rep")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--csv-rows", type=int, default=200_000, help="rows of the loader CSV")
    ap.add_argument("--rss-rows", type=int, default=2_000_000, help="rows of the RSS CSV (0: skip)")
    ap.add_argument("--rss-train-steps", type=int, default=10)
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the generated CSVs")
    ap.add_argument("--skip-loaders", action="store_true", help="model throughput only")
    ap.add_argument(
        "--first-pass-rows", type=int, default=200_000, help="rows of the first-pass CSV (0: skip)"
    )
    ap.add_argument("--first-pass-reps", type=int, default=3)
    ap.add_argument("--first-pass-only", action="store_true", help="the first-pass section only")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "models": {},
    }
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="mtopt-throughput-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if args.first_pass_rows and aliexpress_available():
        from mtopt.data.aliexpress import write_synthetic_aliexpress_csv

        folder = tmp / "aliexpress_first_pass"
        write_synthetic_aliexpress_csv(folder / "train.csv", args.first_pass_rows, 0)
        write_synthetic_aliexpress_csv(
            folder / "test.csv", max(args.first_pass_rows // 10, 1000), 1
        )
        fp = first_pass_throughput(folder, args.first_pass_reps)
        result["first_pass"] = fp
        for e, r in fp["engines"].items():
            print(
                f"first pass, {e}: {r['rows_per_s_median']:.0f} rows/s wall, "
                f"{r['rows_per_cpu_s_median']:.0f} rows per CPU second (median of "
                f"{args.first_pass_reps}, {fp['rows']:,} rows)"
            )
        if "polars_speedup_wall" in fp:
            print(f"first pass: polars x{fp['polars_speedup_wall']:.2f} of numpy (wall)")
        print(f"first pass: same cache bytes from every engine: {fp['same_cache_bytes']}")
        shutil.rmtree(folder)
    if args.first_pass_only:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")
        return
    for backbone in filter(None, args.backbones.split(",")):
        r = model_throughput(backbone, args)
        result["models"][backbone] = r
        print(f"{backbone}: {r['shared_params']:,} shared / {r['params']:,} parameters")
        for label in ("wall", "cpu"):
            q = r[label]
            print(f"  {label} time (median of {args.reps}):")
            for k, v in q["samples_per_s_median"].items():
                print(
                    f"    {k:12s} {v:9.0f} samples/s   time x{q['time_ratio_to_ls'][k]:.2f} of "
                    f"ls, x{q['time_ratio_to_floor'][k]:.3f} of floor, "
                    f"x{q['time_ratio_to_floor_fused'][k]:.3f} of floor_fused"
                )

    loaders: dict[str, Any] = {}
    if args.skip_loaders:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")
        return
    loaders["synthetic-ranking (in memory)"] = loader_throughput(make_data(BATCH * 25))
    if args.csv_rows and aliexpress_available():
        from mtopt.data.aliexpress import write_synthetic_aliexpress_csv

        folder = tmp / "aliexpress_loader"
        t0 = time.perf_counter()
        write_synthetic_aliexpress_csv(folder / "train.csv", args.csv_rows, 0)
        write_synthetic_aliexpress_csv(folder / "test.csv", max(args.csv_rows // 10, 1000), 1)
        wrote = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = registry.get("dataset", "aliexpress")(path=str(folder))
        first = time.perf_counter() - t0  # first pass: validation, index, binary cache
        epoch1 = loader_throughput(ds)
        epoch2 = loader_throughput(ds)
        loaders["aliexpress (first epoch incl. CSV indexing pass)"] = {
            "rows": epoch1["rows"],
            "seconds": first + epoch1["seconds"],
            "samples_per_s": epoch1["rows"] / (first + epoch1["seconds"]),
            "indexing_seconds": first,
            "write_seconds": wrote,
        }
        loaders["aliexpress (later epochs, binary cache)"] = epoch2
        shutil.rmtree(folder)
    elif args.csv_rows:
        print("aliexpress dataset (with write_synthetic_aliexpress_csv) not available: skipped")
    result["loaders"] = loaders
    pub_sps = {b: r["wall"]["samples_per_s_median"]["pub_k1"] for b, r in result["models"].items()}
    for name, lo in loaders.items():
        lo["ratio_to_pub_k1"] = {b: lo["samples_per_s"] / v for b, v in pub_sps.items()}
        ratios = ", ".join(f"{v:.1f}x {b}" for b, v in lo["ratio_to_pub_k1"].items())
        print(
            f"loader {name}: {lo['samples_per_s']:.0f} samples/s"
            + (f" = {ratios} PUB k=1 model speed" if ratios else "")
        )

    if args.rss_rows and aliexpress_available():
        from mtopt.data.aliexpress import write_synthetic_aliexpress_csv

        folder = tmp / "aliexpress_rss"
        t0 = time.perf_counter()
        write_synthetic_aliexpress_csv(folder / "train.csv", args.rss_rows, 0)
        write_synthetic_aliexpress_csv(folder / "test.csv", max(args.rss_rows // 10, 1000), 1)
        wrote = time.perf_counter() - t0
        size = (folder / "train.csv").stat().st_size
        threads = args.threads or torch.get_num_threads()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _RSS_CHILD,
                str(folder),
                str(args.rss_train_steps),
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(proc.stdout.strip().splitlines()[-1])
        rss.update({"csv_rows": args.rss_rows, "csv_bytes": size, "write_seconds": wrote})
        result["rss"] = rss
        print(
            f"streaming a {args.rss_rows:,}-row CSV ({size / 2**20:.0f} MiB) with "
            f"{args.rss_train_steps} PUB steps: peak RSS {rss['peak_rss_mib']:.0f} MiB "
            f"({rss['peak_rss_after_first_pass_mib']:.0f} MiB after the first pass, which took "
            f"{rss['first_pass_seconds']:.0f} s; then {rss['seconds']:.0f} s for all batches)"
        )
        shutil.rmtree(folder)
    result["parent_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
