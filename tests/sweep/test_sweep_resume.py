"""Resumability (finished runs are skipped), failure recording, run keys, presets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_helpers import FakeTrainer, write_recipe  # noqa: E402

from mtopt.errors import InputError  # noqa: E402
from mtopt.sweep import (  # noqa: E402
    EXPERIMENTS,
    SIZES,
    Spec,
    SweepConfig,
    experiment,
    plan,
    preset,
    run_sweep,
)


def _cfg(r: Path, methods=("ls", "pub"), seeds=(0, 1), overrides=()) -> SweepConfig:
    return SweepConfig(
        name="r",
        recipes=[str(r)],
        backbones=[Spec("mmoe")],
        methods=[Spec.parse(m) for m in methods],
        seeds=list(seeds),
        overrides=list(overrides),
    )


def test_second_run_skips_finished_runs(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    fake = FakeTrainer()
    res1 = run_sweep(_cfg(r), tmp_path / "o", train_fn=fake, progress=False)
    assert len(fake.calls) == 4 and res1.executed == 4 and res1.skipped == 0
    res2 = run_sweep(_cfg(r), tmp_path / "o", train_fn=fake, progress=False)
    assert len(fake.calls) == 4 and res2.executed == 0 and res2.skipped == 4
    assert res2.table.markdown == res1.table.markdown
    # one more seed: only the new runs execute
    res3 = run_sweep(_cfg(r, seeds=(0, 1, 2)), tmp_path / "o", train_fn=fake, progress=False)
    assert len(fake.calls) == 6 and res3.executed == 2
    # another override changes every key: everything runs again
    run_sweep(_cfg(r, overrides=["optimizer.lr=0.02"]), tmp_path / "o", train_fn=fake,
              progress=False)  # fmt: skip
    assert len(fake.calls) == 10


def test_failed_runs_are_recorded_and_retried(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    fake = FakeTrainer(fail={"pub"})
    res = run_sweep(_cfg(r), tmp_path / "o", train_fn=fake, progress=False)
    assert res.failed == 2 and len(fake.calls) == 4
    out = json.loads((tmp_path / "o" / "results.json").read_text())
    assert len(out["failed"]) == 2 and all("boom in pub" in f["error"] for f in out["failed"])
    md = (tmp_path / "o" / "table.md").read_text()
    assert "2 failed run(s)" in md and "boom in pub" in md
    # the failed rows have no values; LS still does
    assert "| MMoE+PUB | — | — | — |" in md
    # keep-failed: nothing re-runs; retry: only the failed ones re-run
    run_sweep(_cfg(r), tmp_path / "o", train_fn=fake, progress=False, retry_failed=False)
    assert len(fake.calls) == 4
    fake.fail = set()
    res = run_sweep(_cfg(r), tmp_path / "o", train_fn=fake, progress=False)
    assert len(fake.calls) == 6 and res.failed == 0


def test_keys_ignore_output_and_threads_but_not_seed(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    a = plan(_cfg(r), tmp_path / "x", threads=1)
    b = plan(_cfg(r), tmp_path / "y", threads=2)
    assert [x.key for x in a] == [x.key for x in b]
    assert len({x.key for x in a}) == 4
    # the method section is replaced: a PUB-only option of the recipe never reaches LS
    ls = [x for x in a if x.method == "LS"][0]
    assert ls.recipe["method"]["name"] == "ls" and ls.recipe["method"]["solve_every"] is None


def test_backbone_switch_keeps_only_portable_model_keys(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    cfg = SweepConfig("b", [str(r)], [Spec.parse("ple[expert_dim=8]")], [Spec("ls")], [0])
    (run,) = plan(cfg, tmp_path / "runs")
    assert run.recipe["model"] == {
        "name": "ple", "embed_dim": 4, "tower_dims": [8], "expert_dim": 8
    }  # fmt: skip
    assert run.dropped_model_keys == ["expert_dim", "n_experts"]


def test_optimizer_keys_of_a_method_spec_set_that_rows_optimizer(tmp_path: Path) -> None:
    r = write_recipe(tmp_path / "r.yaml")
    specs = [Spec("ls"), Spec.parse("ls[optimizer.lr=0.02,optimizer.batch_size=100]")]
    cfg = SweepConfig("o", [str(r)], [Spec("mmoe")], specs, [0])
    plain, fast = plan(cfg, tmp_path / "runs")
    po, fo = plain.recipe["optimizer"], fast.recipe["optimizer"]
    assert po["lr"] == 0.01 and po["batch_size"] == 200
    assert fo["lr"] == 0.02 and fo["batch_size"] == 100
    assert fast.recipe["method"]["name"] == "ls"
    assert not any(k.startswith("optimizer") for k in fast.recipe["method"])
    assert fast.key != plain.key and fast.method == "LS[optimizer.lr=0.02,optimizer.batch_size=100]"


def test_a_run_is_found_under_another_label(tmp_path: Path) -> None:
    """``ls[optimizer.lr=0.02]`` and ``ls`` with ``--set optimizer.lr=0.02`` are the same run
    (same key): the second sweep finds the first one's folder instead of training it again."""
    r = write_recipe(tmp_path / "r.yaml")
    runs = tmp_path / "runs"
    first = SweepConfig("a", [str(r)], [Spec("mmoe")], [Spec.parse("ls[optimizer.lr=0.02]")], [0])
    (a,) = plan(first, runs)
    a.run_dir.mkdir(parents=True)
    second = SweepConfig("b", [str(r)], [Spec("mmoe")], [Spec("ls")], [0])
    second.overrides = ["optimizer.lr=0.02"]
    (b,) = plan(second, runs)
    assert b.key == a.key and b.run_dir == a.run_dir and b.method == "LS"
    third = SweepConfig("c", [str(r)], [Spec("mmoe")], [Spec("ls")], [0])  # another key
    (c,) = plan(third, runs)
    assert c.key != a.key and c.run_dir != a.run_dir


def test_every_preset_plans(tmp_path: Path) -> None:
    for name in EXPERIMENTS:
        for size in SIZES:  # every size builds; planning (recipe validation) only for quick
            cfg = experiment(name, size)
            assert cfg.name == f"{name}-{size}"
        runs = plan(experiment(name, "quick"), tmp_path / "runs")
        assert len(runs) == len({r.key for r in runs})  # no run planned twice
    assert preset("quick").name == "table3-quick"
    assert preset("table4-standard").name == "table4-standard"
    with pytest.raises(InputError):
        preset("table9-quick")


def test_key_ignores_explicit_defaults_and_force_reruns(tmp_path: Path) -> None:
    plain = write_recipe(tmp_path / "a.yaml")
    # the same recipe with schema defaults written out: the same runs
    explicit = write_recipe(
        tmp_path / "b.yaml", optimizer={"weight_decay": 1e-6}, train={"checkpoint_every": None}
    )
    ka = [r.key for r in plan(_cfg(plain), tmp_path / "x")]
    kb = [r.key for r in plan(_cfg(explicit), tmp_path / "x")]
    assert ka == kb
    changed = write_recipe(tmp_path / "c.yaml", optimizer={"weight_decay": 0.0})
    assert [r.key for r in plan(_cfg(changed), tmp_path / "x")] != ka
    fake = FakeTrainer()
    run_sweep(_cfg(plain), tmp_path / "o", train_fn=fake, progress=False)
    run_sweep(_cfg(plain), tmp_path / "o", train_fn=fake, progress=False, force=True)
    assert len(fake.calls) == 8


def test_sweep_worker_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """A worker (here: a grandchild running mtopt.sweep.watch_parent, then sleeping) exits within
    a few seconds of its parent's SIGKILL instead of lingering as an orphan."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "child.pid"
    child = (
        "import os, sys, time; from mtopt.sweep import watch_parent; watch_parent(0.1); "
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    middle = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys, time; "
         f"subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"]
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)
    pid = int(pid_file.read_text())

    def alive() -> bool:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False
        return "State:\tZ" not in state  # a zombie has exited

    assert alive()
    os.kill(middle.pid, signal.SIGKILL)
    middle.wait()
    t0 = time.monotonic()
    while alive() and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not alive(), "the orphaned worker is still running 10 s after its parent died"
