"""Worker functions run in spawned processes by the distributed tests (importable by name).

Each worker joins a 2-process gloo group through the environment variables torchrun would set,
trains tiny recipes with :class:`mtopt.train.trainer.Trainer` and saves what the test compares.
Outcomes (``ok`` or the error message) are written to files, never raised past the process.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any

import torch

TINY = {
    "data": {"name": "synthetic-ranking", "seed": 0, "n_train": 201, "n_val": 128, "n_test": 128},
    "model": {"name": "shared-bottom", "bottom_dims": [16], "embed_dim": 4, "tower_dims": [8]},
    "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 64, "weight_decay": 1e-4},
    "train": {"steps": 4, "seed": 3, "threads": 1, "dist_timeout": 30},
    "output": {"plots": False, "progress": False},
}

#: methods the equivalence test trains: update-level, loss-level (stateful), gradient-level
METHODS: dict[str, dict[str, Any]] = {
    "pub": {"name": "pub", "solver": "newton"},
    # row-wise embedding table: the touched rows are all-gathered across ranks
    "pub-rows": {"name": "pub", "solver": "newton", "embeddings": "row-wise"},
    # one backward between solves: the weighted ḡ and its touched rows reduced as one pseudo-task
    "pub-weighted": {
        "name": "pub",
        "solver": "newton",
        "embeddings": "row-wise",
        "solve_every": 2,
        "between_solves": "weighted",
        "weighted_tol": 1.0,
    },
    "ls": {"name": "ls"},
    "dwa": {"name": "dwa"},
    "mgda": {"name": "mgda"},
    "nashmtl": {"name": "nashmtl"},
}


def recipe(method: str, **train: Any):
    """The tiny recipe with ``method`` (a key of :data:`METHODS`)."""
    from mtopt.config import recipe_from_dict

    raw = {k: dict(v) for k, v in TINY.items()}
    raw["method"] = dict(METHODS[method])
    raw["train"].update(train)
    return recipe_from_dict(raw, f"{method}.yaml")


def next_port() -> None:
    """Point ``MASTER_PORT`` at the next of the ports the test reserved (``MTOPT_TEST_PORTS``):
    every run of a sequence gets its own rendezvous port. On one port, a fast rank could join
    the previous run's store while rank 0 is still tearing it down, and rank 0's new store
    would then wait for a client that never comes."""
    ports = os.environ["MTOPT_TEST_PORTS"].split(",")
    os.environ["MTOPT_TEST_PORTS"] = ",".join(ports[1:])
    os.environ["MASTER_PORT"] = ports[0]


def _env(rank: int, world: int, port: int) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",
    )
    torch.set_num_threads(1)


def train_methods(
    rank: int, world: int, port: int, out: str, methods: list[str], resume: list[str]
) -> None:
    """Train each method on 2 ranks; save every rank's final parameters. Methods in
    ``resume`` are also trained 2 steps, then resumed from the checkpoint to 4."""
    _env(rank, world, port)
    res = Path(out)
    try:
        from mtopt.train.trainer import Trainer

        for m in methods:
            next_port()
            t = Trainer(recipe(m), res / m)
            t.run()
            sd = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
            torch.save(sd, res / f"{m}.rank{rank}.pt")
        for m in resume:  # 2 steps, then resume to the recipe's 4 steps
            next_port()
            Trainer(recipe(m, steps=2), res / f"{m}-resumed").run()
            next_port()
            t = Trainer(recipe(m), res / f"{m}-resumed")
            t.run(resume=True)
            sd = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
            torch.save(sd, res / f"{m}-resumed.rank{rank}.pt")
        (res / f"ok.rank{rank}").write_text("ok")
    except BaseException:  # noqa: BLE001 - reported to the test through a file
        (res / f"error.rank{rank}").write_text(traceback.format_exc())


def _crash_at(method: Any, at: int) -> None:
    """Make ``method.step`` raise on its ``at``-th call (the crashing rank only)."""
    orig, calls = method.step, [0]

    def step(losses: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] == at:
            raise ZeroDivisionError("injected crash")
        return orig(losses, **kw)

    method.step = step


def crash(rank: int, world: int, port: int, out: str) -> None:
    """Rank 1 raises at its second step; rank 0 must fail with a clear RunError."""
    _env(rank, world, port)
    res = Path(out)
    t0 = time.perf_counter()
    try:
        from mtopt.train.build import build_components
        from mtopt.train.trainer import Trainer

        r = recipe("ls", steps=6, dist_timeout=20)
        ds, model, method = build_components(r)
        if rank == 1:
            _crash_at(method, 2)
        Trainer(r, res / "run", components=(ds, model, method)).run()
        (res / f"ok.rank{rank}").write_text("ok")
    except BaseException as exc:  # noqa: BLE001
        (res / f"error.rank{rank}").write_text(
            f"{type(exc).__name__}: {exc}\n{time.perf_counter() - t0:.1f}"
        )


def diverge(rank: int, world: int, port: int, out: str) -> None:
    """Rank 1's method nudges a parameter (rank-local state); the check at the next checkpoint
    must stop both ranks with a RunError naming the problem."""
    _env(rank, world, port)
    res = Path(out)
    try:
        from mtopt.train.build import build_components
        from mtopt.train.trainer import Trainer

        r = recipe("ls", steps=4, checkpoint_every=2)
        ds, model, method = build_components(r)
        if rank == 1:
            orig = method.step

            def step(losses: Any, **kw: Any) -> Any:
                info = orig(losses, **kw)
                with torch.no_grad():
                    next(model.parameters()).view(-1)[0] += 1e-3
                return info

            method.step = step
        Trainer(r, res / "run", components=(ds, model, method)).run()
        (res / f"ok.rank{rank}").write_text("ok")
    except BaseException as exc:  # noqa: BLE001
        (res / f"error.rank{rank}").write_text(f"{type(exc).__name__}: {exc}")


# -------------------------------------------------------------------- data.shard: rank
def shard_recipe(data_dir: str, **train: Any):
    """A tiny AliExpress recipe with ``data.shard: rank``; ``search_id`` (the row index in the
    file written by ``write_synthetic_aliexpress_csv``) is fed as a categorical column so that
    the tests can tell which rows every process trained on."""
    from mtopt.config import recipe_from_dict

    raw = {
        "data": {
            "name": "aliexpress",
            "path": data_dir,
            "shard": "rank",
            "chunk_rows": 100,
            "shuffle_buffer": 256,
            "categorical_columns": ["search_id", "categorical_1", "categorical_2"],
            "numerical_columns": ["numerical_1", "numerical_2", "numerical_3"],
        },
        "model": dict(TINY["model"]),
        "method": {"name": "pub", "solver": "newton"},
        "optimizer": dict(TINY["optimizer"]),
        "train": {"epochs": 1, "seed": 3, "threads": 1, "dist_timeout": 30, **train},
        "output": dict(TINY["output"]),
    }
    return recipe_from_dict(raw, "shard.yaml")


def _recording(ds: Any, record: dict[str, Any]) -> None:
    """Make ``ds.batches`` keep the train batches it yields for training (shuffled) and, once
    such a stream ends, its pieces and rows read (before an evaluation resets ``ds.stats``).
    The unshuffled read of the leakage guard's sample before training is not recorded."""
    orig = ds.batches

    def batches(split: str, *args: Any, **kw: Any) -> Any:
        it = orig(split, *args, **kw)
        if split != "train" or not kw.get("shuffle"):
            yield from it
            return
        for b in it:
            record["batches"].append((b["cat"], b["dense"], b["labels"]))
            yield b
        record["pieces"] = [list(p) for p in ds.stats["pieces"]]
        record["rows_read"] = int(ds.stats["rows_read"])

    ds.batches = batches


def shard_rank(rank: int, world: int, port: int, out: str, data_dir: str) -> None:
    """Train one epoch with ``data.shard: rank``; save what each process read and trained on.
    Then the same recipe for 5 steps, resumed to the end of the epoch (final parameters)."""
    _env(rank, world, port)
    res = Path(out)
    try:
        from mtopt.train.build import build_components
        from mtopt.train.trainer import Trainer

        r = shard_recipe(data_dir)
        ds, model, method = build_components(r)
        record: dict[str, Any] = {"batches": []}
        _recording(ds, record)
        t = Trainer(r, res / "run", components=(ds, model, method))
        summary = t.run()
        record["params"] = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
        record["steps"] = t.step
        record["samples"] = int(summary["samples"])
        next_port()
        Trainer(shard_recipe(data_dir, epochs=None, steps=5), res / "resumed").run()
        next_port()
        t2 = Trainer(r, res / "resumed")
        t2.run(resume=True)
        record["resumed"] = {k: v.detach().clone() for k, v in t2.model.state_dict().items()}
        torch.save(record, res / f"shard.rank{rank}.pt")
        (res / f"ok.rank{rank}").write_text("ok")
    except BaseException:  # noqa: BLE001 - reported to the test through a file
        (res / f"error.rank{rank}").write_text(traceback.format_exc())


# -------------------------------------------------------------------- DistContext.reduce_rows
def row_parts(rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Rank ``rank``'s touched rows per (task, table): 2 tasks × 2 tables of widths 2 and 3
    (10 rows each), overlapping and empty sets, float64 values drawn from a seeded generator."""
    g = torch.Generator().manual_seed(100 + rank)
    rows = {
        0: [[1, 3, 5], [0, 9], [], [2, 3, 4, 7]],
        1: [[3, 4], [9], [0, 2], [7]],
    }[rank]
    widths = [2, 3, 2, 3]  # (task 0, table 0), (task 0, table 1), (task 1, table 0), ...
    f64 = torch.float64
    return [
        (torch.tensor(r, dtype=torch.long), torch.randn(len(r), w, generator=g, dtype=f64))
        for r, w in zip(rows, widths)
    ]


def reduce_rows_check(rank: int, world: int, port: int, out: str) -> None:
    """Call DistContext.reduce_rows on :func:`row_parts` and save the result."""
    _env(rank, world, port)
    res = Path(out)
    try:
        from mtopt.distributed import setup

        ctx = setup("cpu", timeout=30)
        merged = ctx.reduce_rows(row_parts(rank))
        torch.save(merged, res / f"rows.rank{rank}.pt")
        ctx.close()
        (res / f"ok.rank{rank}").write_text("ok")
    except BaseException:  # noqa: BLE001
        (res / f"error.rank{rank}").write_text(traceback.format_exc())
