"""``mtopt train`` after a ``kill -9`` during ``--overwrite``: the next start finds the hidden
``.mtopt-replaced-*`` folder and leaves one run in the output folder, with a warning
(docs/errors.md, "mtopt train")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import QUICK, ROOT, TINY, snapshot, train  # noqa: E402

from mtopt.train.rundir import ASIDE_PREFIX, RunFolder  # noqa: E402

PUT_BACK = "before the new run's first checkpoint; the previous run was put back"
NEW_KEPT = "after the new run's first checkpoint; the new run is kept"


def asides(out: Path) -> list[Path]:
    return sorted(out.glob(ASIDE_PREFIX + "*"))


def killed_overwrite(out: Path) -> None:
    """The disk as a ``--overwrite`` killed before its first checkpoint leaves it: the old run
    moved aside (by :meth:`RunFolder.prepare` itself), a partial new run, a stale .tmp file."""
    RunFolder(out).prepare(resume=False, overwrite=True)
    assert len(asides(out)) == 1 and not (out / "checkpoints" / "last.pt").exists()
    (out / "recipe.yaml").write_text("the interrupted run's recipe\n")
    (out / "steps.csv").write_text("step,loss\n1,0.7\n")
    (out / "checkpoints" / ".last.pt.k9x2a1.tmp").write_bytes(b"half a checkpoint")


def warned(r, *needles: str) -> list[str]:
    """The stderr lines of ``r`` (no traceback); one warning line holds every needle."""
    assert "Traceback" not in r.err, r.err
    hits = [x for x in r.lines if x.startswith("mtopt: warning: ") and all(n in x for n in needles)]
    assert len(hits) == 1, r.err
    return r.lines


# ---------------------------------------------------------------- killed before the checkpoint
def test_no_flag_puts_the_old_run_back_then_refuses(run_copy: Path) -> None:
    before = snapshot(run_copy)
    killed_overwrite(run_copy)
    r = train("--out", str(run_copy))
    assert r.code == 2, r.err
    lines = warned(r, str(run_copy), PUT_BACK, ASIDE_PREFIX)
    assert len(lines) == 2 and "already holds a run" in lines[1], lines
    assert snapshot(run_copy) == before  # the old run byte for byte, no hidden folder


def test_resume_continues_the_old_run(run_copy: Path) -> None:
    killed_overwrite(run_copy)
    r = train("--out", str(run_copy), "--resume", "--set", "train.steps=3")
    assert r.code == 0, r.err
    warned(r, PUT_BACK)
    assert json.loads((run_copy / "summary.json").read_text())["steps"] == 3  # 2 old + 1
    assert not asides(run_copy)
    assert not list(run_copy.rglob("*.tmp"))


def test_overwrite_replaces_the_old_run_properly(run_copy: Path) -> None:
    old = snapshot(run_copy)
    killed_overwrite(run_copy)
    r = train("--out", str(run_copy), "--overwrite", "--set", "train.seed=1")
    assert r.code == 0, r.err
    warned(r, PUT_BACK)
    new = snapshot(run_copy)
    assert sorted(new) == sorted(old)  # one run, no hidden folder left
    assert new["checkpoints/last.pt"] != old["checkpoints/last.pt"]


def test_killed_while_moving_the_old_run_aside(run_copy: Path) -> None:
    """No marker: the move was partial, so every file in ``out`` is still the old run's
    (its checkpoint included) and the rest is put back."""
    before = snapshot(run_copy)
    aside = run_copy / (ASIDE_PREFIX + "x1y2")
    aside.mkdir()
    for rel in ("steps.csv", "summary.json"):
        os.replace(run_copy / rel, aside / rel)
    r = train("--out", str(run_copy))
    assert r.code == 2, r.err
    warned(r, PUT_BACK)
    assert snapshot(run_copy) == before


# ---------------------------------------------------------------- killed after the checkpoint
def test_new_run_with_a_checkpoint_wins(run_copy: Path) -> None:
    killed_overwrite(run_copy)
    (run_copy / "checkpoints" / "last.pt").write_bytes(b"the new run's first checkpoint")
    new = {k: v for k, v in snapshot(run_copy).items() if not k.startswith(ASIDE_PREFIX)}
    r = train("--out", str(run_copy))
    assert r.code == 2, r.err
    lines = warned(r, NEW_KEPT)
    assert "already holds a run" in lines[-1]
    assert snapshot(run_copy) == new  # only the hidden folder is gone


def test_library_commit_and_rollback_leave_no_folder(run_copy: Path) -> None:
    before = snapshot(run_copy)
    folder = RunFolder(run_copy)
    folder.prepare(resume=False, overwrite=True)
    (run_copy / "recipe.yaml").write_text("new")
    folder.rollback()
    assert snapshot(run_copy) == before
    folder = RunFolder(run_copy)
    folder.prepare(resume=False, overwrite=True)
    folder.commit()
    assert not asides(run_copy) and not (run_copy / "summary.json").exists()


# ---------------------------------------------------------------- a real kill -9
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_real_kill_9_during_overwrite(run_copy: Path) -> None:
    """An ``--overwrite`` with a long first epoch (its first checkpoint comes at the epoch's
    end, ~1250 steps) is killed once it has moved the old run aside and started writing."""
    before = snapshot(run_copy)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("MTOPT_DEBUG", None)
    slow = ["--set", "data.n_train=20000", "--set", "optimizer.batch_size=16"]
    slow += ["--set", "train.steps=100000"]
    cmd = [sys.executable, "-m", "mtopt", "train", QUICK, *TINY, *slow]
    cmd += ["--out", str(run_copy), "--overwrite"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not (asides(run_copy) and (run_copy / "steps.csv").exists()):
            assert p.poll() is None, p.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        p.kill()  # SIGKILL
        p.wait()
    assert p.returncode == -9
    assert not (run_copy / "checkpoints" / "last.pt").exists(), "killed too late"
    assert len(asides(run_copy)) == 1
    r = train("--out", str(run_copy))
    assert r.code == 2, r.err
    warned(r, PUT_BACK)
    assert snapshot(run_copy) == before
