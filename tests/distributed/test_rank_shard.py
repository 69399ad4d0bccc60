"""``data.shard: rank``: every process reads only its share of the AliExpress stream."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dist_workers  # noqa: E402
from test_data_parallel import launch  # noqa: E402

from mtopt.data.aliexpress import AliExpress, write_synthetic_aliexpress_csv  # noqa: E402
from mtopt.data.base import MTDataset  # noqa: E402
from mtopt.distributed import DistContext  # noqa: E402
from mtopt.errors import InputError  # noqa: E402
from mtopt.train.build import build_components  # noqa: E402
from mtopt.train.trainer import Trainer  # noqa: E402

#: 15 blocks of 100 rows, the last one short; with the recipe's seed the 2 processes' shares
#: have 648 and 637 train rows: 20 local batches of 32 each, 8 rows dropped, uneven last step
TRAIN_ROWS = 1419
LOCAL_BATCH = 32  # the recipes' batch_size 64 over 2 processes


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ali")
    kw = {"n_cat": 2, "n_num": 3, "loss_ratio": None}  # conversions after 10 % of clicks
    write_synthetic_aliexpress_csv(d / "train.csv", TRAIN_ROWS, 0, **kw)
    write_synthetic_aliexpress_csv(d / "test.csv", 300, 1, **kw)
    dataset(d)  # write the index and binary caches once, before the processes start
    return d


def dataset(d: Path, **kw: Any) -> AliExpress:
    opts = dict(dist_workers.shard_recipe(str(d)).data.kwargs())
    opts.update(kw)
    return AliExpress(**opts)


def ids(batches: list) -> np.ndarray:
    """Row indices (the search_id column, fed as the first categorical column)."""
    return np.concatenate([np.asarray(b[0][:, 0]) for b in batches]) if batches else np.zeros(0)


# ------------------------------------------------------------------ the reader, one process
@pytest.mark.parametrize("binary_cache", [True, False])
def test_one_process_share_is_the_plain_stream(data_dir: Path, binary_cache: bool) -> None:
    ds = dataset(data_dir, binary_cache=binary_cache, cache=binary_cache)
    kw = {"shuffle": True, "seed": 4, "epoch": 1}
    plain = list(ds.batches("train", 50, **kw))
    one = list(ds.batches("train", 50, rank=0, world_size=1, **kw))
    assert len(plain) == len(one)
    for a, b in zip(plain, one):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("binary_cache", [True, False])
def test_shares_are_disjoint_equal_length_and_cover_the_split(
    data_dir: Path, world: int, binary_cache: bool
) -> None:
    ds = dataset(data_dir, binary_cache=binary_cache, cache=binary_cache)
    kw = {"shuffle": True, "seed": 1, "epoch": 2}
    # the split's rows, read by one process (train = file rows not in val)
    train_ids = set(ids([(b["cat"],) for b in ds.batches("train", 500)]).tolist())
    assert len(train_ids) == ds.num_rows("train") < TRAIN_ROWS
    seen, covered, counts = [], np.zeros(TRAIN_ROWS, dtype=int), []
    for r in range(world):
        bs = list(ds.batches("train", LOCAL_BATCH, rank=r, world_size=world, **kw))
        counts.append(len(bs))
        seen.append(ids([(b["cat"],) for b in bs]))
        assert all(len(b["labels"]) <= LOCAL_BATCH for b in bs)
        for b, lo, hi in ds.stats["pieces"]:
            covered[b * 100 + lo : b * 100 + hi] += 1
        # only this process's pieces were read from the binary cache
        if binary_cache:
            assert ds.stats["rows_read"] == sum(hi - lo for _, lo, hi in ds.stats["pieces"])
            assert ds.stats["rows_read"] < TRAIN_ROWS / world + 100
    assert len(set(counts)) == 1, counts  # the same number of local batches on every process
    assert (covered == 1).all()  # the pieces read are disjoint and cover the file
    every = np.concatenate(seen)
    assert len(set(every.tolist())) == len(every)  # no row in two processes
    assert set(every.tolist()) <= train_ids
    # dropped: per process, the rows of its share beyond counts·LOCAL_BATCH
    share_rows = []
    for r in range(world):
        plan_pieces = ds.rank_plan("train", LOCAL_BATCH, world_size=world, **kw)["pieces"][r]
        rows = {i for b, lo, hi in plan_pieces for i in range(b * 100 + lo, b * 100 + hi)}
        share_rows.append(len(rows & train_ids))
    dropped = sum(max(0, n - counts[0] * LOCAL_BATCH) for n in share_rows)
    assert len(every) == len(train_ids) - dropped
    assert dropped <= sum(n - min(share_rows) for n in share_rows)  # the documented bound
    plan = ds.rank_plan("train", LOCAL_BATCH, world_size=world, **kw)
    assert plan["batches"] == counts[0] and sum(plan["dropped"]) == dropped


def test_too_few_rows_for_the_processes(tmp_path: Path) -> None:
    write_synthetic_aliexpress_csv(tmp_path / "train.csv", 3, 0, n_cat=1, n_num=1)
    write_synthetic_aliexpress_csv(tmp_path / "test.csv", 3, 1, n_cat=1, n_num=1)
    ds = AliExpress(path=tmp_path, val_fraction=0.0)
    with pytest.raises(InputError, match=r"data.shard: rank: split 'train' .* 4 processes"):
        list(ds.batches("train", 2, rank=0, world_size=4))
    with pytest.raises(InputError, match=r"rank must be an integer in \[0, 2\)"):
        list(ds.batches("train", 2, rank=2, world_size=2))


# ------------------------------------------------------------------ the trainer's checks
def test_trainer_checks_batch_size_and_falls_back(data_dir: Path) -> None:
    r = dist_workers.shard_recipe(str(data_dir))
    t = Trainer(r, "unused")
    t.dist = DistContext(rank=0, world_size=3)  # no collective is called by the check
    t.dataset = build_components(r)[0]
    with pytest.raises(InputError, match=r"optimizer.batch_size: 64 is not divisible by the 3"):
        t._rank_shard()
    t.dist = DistContext(rank=0, world_size=2)
    assert t._rank_shard() is True
    # an in-memory dataset (no per-process reader): global slicing, said once
    t.dataset = build_components(dist_workers.recipe("ls"))[0]
    assert not type(t.dataset).supports_rank_shard and MTDataset.supports_rank_shard is False
    with pytest.warns(UserWarning, match="has no per-process reader"):
        assert t._rank_shard() is False
    assert sum("no per-process reader" in w for w in t.warnings) == 1


# ------------------------------------------------------------------ two gloo processes
@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> list[dict]:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("shard")
    outcomes = launch("shard_rank", out, str(data_dir))
    assert outcomes == ["ok", "ok"], outcomes
    return [torch.load(out / f"shard.rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.slow
def test_two_processes_read_disjoint_shares(two_ranks: list[dict], data_dir: Path) -> None:
    a, b = two_ranks
    # each process read its own blocks / row ranges; together the whole file, once
    covered = np.zeros(TRAIN_ROWS, dtype=int)
    for rec in two_ranks:
        for blk, lo, hi in rec["pieces"]:
            covered[blk * 100 + lo : blk * 100 + hi] += 1
        assert rec["rows_read"] < TRAIN_ROWS  # no process read the whole stream
    assert (covered == 1).all()
    # the same number of steps, identical parameters
    assert a["steps"] == b["steps"] == len(a["batches"]) == len(b["batches"]) > 0
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    # the rows trained on: disjoint, within the train split, all of it but the documented drop
    ds = dataset(data_dir)
    train_ids = set(ids([(x["cat"],) for x in ds.batches("train", 500)]).tolist())
    ia, ib = ids(a["batches"]), ids(b["batches"])
    assert not set(ia.tolist()) & set(ib.tolist())
    assert set(ia.tolist()) | set(ib.tolist()) <= train_ids
    plan = ds.rank_plan("train", LOCAL_BATCH, shuffle=True, seed=3, epoch=0, world_size=2)
    assert sum(plan["dropped"]) > 0 and plan["batches"] == a["steps"]  # the case meant here
    assert len(ia) + len(ib) == len(train_ids) - sum(plan["dropped"])
    assert len(ia) != len(ib)  # the last step was uneven
    assert a["samples"] == len(ia) + len(ib)  # global rows = the sum of the local rows
    # a resumed run continues each process's own stream
    for k in a["params"]:
        assert torch.equal(a["resumed"][k], a["params"][k]), k


class _Concatenated(MTDataset):
    """The two processes' local batches, step by step, joined into global batches."""

    def __init__(self, inner: AliExpress, ranks: list[dict]) -> None:
        self.inner, self.schema = inner, inner.schema
        self.steps = [
            tuple(torch.cat(parts) for parts in zip(*step))
            for step in zip(ranks[0]["batches"], ranks[1]["batches"])
        ]

    def num_rows(self, split: str) -> int | None:
        return self.inner.num_rows(split)

    def batches(self, split: str, batch_size: int, **kw: Any) -> Iterator[dict]:
        if split != "train":
            yield from self.inner.batches(split, batch_size)
            return
        for cat, dense, labels in self.steps:
            yield {"cat": cat, "dense": dense, "labels": labels}


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_joined_batches(
    two_ranks: list[dict], data_dir: Path, tmp_path: Path
) -> None:
    """The global losses and gradients (global_rows = the sum of the local rows, also on the
    uneven last step) are those of one process trained on the joined batches."""
    r = dist_workers.shard_recipe(str(data_dir))
    ds, model, method = build_components(r)
    t = Trainer(r, tmp_path / "one", components=(_Concatenated(ds, two_ranks), model, method))
    t.run()
    assert t.step == two_ranks[0]["steps"]
    ref = t.model.state_dict()
    for k, v in two_ranks[0]["params"].items():
        assert torch.allclose(v, ref[k], rtol=1e-4, atol=2e-6), (
            f"{k} off by {float((v - ref[k]).abs().max()):.3g}"
        )
