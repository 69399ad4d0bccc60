"""Two CPU processes (gloo, one thread each) against one process on the same global batches."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dist_workers  # noqa: E402

from mtopt.distributed import DistContext, shard_batch  # noqa: E402
from mtopt.errors import RunError  # noqa: E402
from mtopt.train.trainer import Trainer  # noqa: E402

METHODS = ["pub", "pub-rows", "pub-weighted", "ls", "dwa", "mgda", "nashmtl"]
#: methods also checked for a multi-process resume
RESUME = ["pub", "pub-weighted", "dwa"]
TIMEOUT = 150.0


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all bound at once, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def launch(target: str, out: Path, *args: object) -> list[str]:
    """Run ``dist_workers.<target>(rank, 2, port, out, *args)`` in 2 forked processes (forked
    from this already warmed-up interpreter: a fresh one spends ~10 s importing on a loaded
    2-core box); return each rank's outcome (``ok`` or its error)."""
    ctx = mp.get_context("fork")
    port, *more = free_ports(24)
    os.environ["MTOPT_TEST_PORTS"] = ",".join(map(str, more))  # dist_workers.next_port
    fn = getattr(dist_workers, target)
    procs = [ctx.Process(target=fn, args=(r, 2, port, str(out), *args)) for r in range(2)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + TIMEOUT
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join(5)
    assert not hung, f"{len(hung)} process(es) still running after {TIMEOUT} s"
    outcomes = []
    for r in range(2):
        err, ok = out / f"error.rank{r}", out / f"ok.rank{r}"
        if err.exists():
            outcomes.append(err.read_text())
        elif ok.exists():
            outcomes.append(ok.read_text())
        else:
            outcomes.append(f"no outcome (exit code {procs[r].exitcode})")
    return outcomes


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, dict]]:
    """Each method trained by one process: (final state_dict, summary)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("single")
    res = {}
    for m in METHODS:
        t = Trainer(dist_workers.recipe(m), out / m)
        summary = t.run()
        res[m] = ({k: v.detach().clone() for k, v in t.model.state_dict().items()}, summary)
    return res


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory, one_process: dict) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    outcomes = launch("train_methods", out, METHODS, RESUME)
    assert outcomes == ["ok", "ok"], outcomes
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_ranks_identical_and_match_one_process(
    two_ranks: Path, one_process: dict, method: str
) -> None:
    a = torch.load(two_ranks / f"{method}.rank0.pt", weights_only=True)
    b = torch.load(two_ranks / f"{method}.rank1.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{method}: {k} differs between ranks"
    ref, ref_summary = one_process[method]
    for k in a:
        assert torch.allclose(a[k], ref[k], rtol=1e-4, atol=2e-6), (
            f"{method}: {k} off by {float((a[k] - ref[k]).abs().max()):.3g}"
        )
    # the parameters moved (the equality is not that of untouched initial values)
    from mtopt.train.build import build_components

    _, model0, _ = build_components(dist_workers.recipe(method))
    init = model0.state_dict()
    assert max(float((a[k] - init[k]).abs().max()) for k in a) > 1e-3
    # rank 0 alone wrote the run's files, the summary counts global samples
    import json

    summary = json.loads((two_ranks / method / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert summary["samples"] == 201  # 3 × 64 + 9 (the last global batch splits 4 | 5)
    assert summary["val"]["auc_avg"] == pytest.approx(ref_summary["val"]["auc_avg"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("method", RESUME)
def test_resume_multi_process(two_ranks: Path, one_process: dict, method: str) -> None:
    a = torch.load(two_ranks / f"{method}-resumed.rank0.pt", weights_only=True)
    b = torch.load(two_ranks / f"{method}-resumed.rank1.pt", weights_only=True)
    uninterrupted = torch.load(two_ranks / f"{method}.rank0.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert torch.equal(a[k], uninterrupted[k]), f"{k}: resumed run differs"


@pytest.mark.slow
def test_crashed_rank_gives_clear_error(tmp_path: Path, one_process: dict) -> None:
    t0 = time.monotonic()
    outcomes = launch("crash", tmp_path)
    elapsed = time.monotonic() - t0
    assert outcomes[1].startswith("ZeroDivisionError: injected crash"), outcomes[1]
    assert outcomes[0].startswith("RunError: rank 0/2: "), outcomes[0]
    assert "another process probably crashed" in outcomes[0]
    assert elapsed < 60, elapsed  # no hang up to the collective timeout


@pytest.mark.slow
def test_diverged_ranks_are_detected(tmp_path: Path, one_process: dict) -> None:
    outcomes = launch("diverge", tmp_path)
    for o in outcomes:
        assert o.startswith("RunError: step 2: the parameters differ between processes"), o


def test_shard_batch_partitions_rows() -> None:
    batch = {"labels": torch.arange(10.0).reshape(5, 2), "cat": torch.arange(5)[:, None]}
    parts = [shard_batch(batch, r, 2) for r in range(2)]
    assert torch.equal(torch.cat([p["cat"] for p in parts]), batch["cat"])
    assert [p["labels"].shape[0] for p in parts] == [2, 3]
    assert shard_batch({"labels": torch.zeros(1, 2)}, 1, 2) is None
    assert shard_batch(batch, 0, 1) is batch


def test_single_process_context_is_identity() -> None:
    ctx = DistContext()
    t = torch.tensor([1.0, 2.0])
    assert ctx.all_reduce_mean_(t) is t and t.tolist() == [1.0, 2.0]
    ls = [torch.tensor(0.5, requires_grad=True)]
    assert ctx.globalize_losses(ls, 3, 7)[0] is ls[0]
    assert ctx.on_main(lambda: 5) == 5
    with pytest.raises(RunError, match="boom"):
        ctx.on_main(lambda: (_ for _ in ()).throw(RunError("boom")))


def test_reduce_rows_equals_the_dense_average(tmp_path: Path) -> None:
    """The all-gathered row-sparse average equals densify-then-average (an independent
    reference), with the union of rows sorted, on both ranks bitwise alike."""
    outcomes = launch("reduce_rows_check", tmp_path)
    assert outcomes == ["ok", "ok"], outcomes
    got = [torch.load(tmp_path / f"rows.rank{r}.pt", weights_only=True) for r in range(2)]
    parts = [dist_workers.row_parts(r) for r in range(2)]
    for p in range(4):
        width = parts[0][p][1].shape[1]
        dense = torch.zeros(2, 10, width, dtype=torch.float64)
        for r in range(2):
            rows, vals = parts[r][p]
            dense[r, rows] = vals
        ref = dense.mean(0)
        ref_rows = torch.unique(torch.cat([parts[0][p][0], parts[1][p][0]]))
        for r in range(2):
            rows, vals = got[r][p]
            assert torch.equal(rows, ref_rows)
            assert torch.allclose(vals, ref[rows], rtol=0, atol=1e-15)
            assert torch.equal(vals, got[0][p][1])
