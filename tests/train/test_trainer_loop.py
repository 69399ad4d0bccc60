"""The trainer on small fakes: resume bitwise, NaN handling, null AUC, closure, outputs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mtopt_train_fakes as fakes  # noqa: E402

from mtopt.config import recipe_from_dict  # noqa: E402
from mtopt.errors import InputError, RunError  # noqa: E402
from mtopt.train.build import build_components  # noqa: E402
from mtopt.train.checkpoint import load_checkpoint  # noqa: E402
from mtopt.train.metrics import SingleClassWarning  # noqa: E402
from mtopt.train.trainer import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def run(out: Path, resume: bool = False, **sections: dict) -> tuple[dict, Trainer]:
    t = Trainer(recipe_from_dict(fakes.fake_recipe(**sections)), out)
    return t.run(resume=resume), t


def rows(path: Path, drop: tuple[str, ...] = ("seconds",)) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(fh)]


def assert_same_params(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def assert_same_run(a: Path, ta: Trainer, b: Path, tb: Trainer, sa: dict, sb: dict) -> None:
    assert_same_params(ta.model, tb.model)
    assert rows(a / "metrics.csv") == rows(b / "metrics.csv")
    assert rows(a / "steps.csv") == rows(b / "steps.csv")
    for key in ("val", "test", "best_epoch", "best_step", "alpha", "steps", "samples"):
        assert sa[key] == sb[key], key
    ma = load_checkpoint(a / "checkpoints" / "best.pt")["model"]
    mb = load_checkpoint(b / "checkpoints" / "best.pt")["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)


def test_resume_two_epochs_equals_one_plus_one(tmp_path: Path) -> None:
    # dropout in the fake model makes the result depend on the restored torch RNG state
    s_full, t_full = run(tmp_path / "full", train={"epochs": 2})
    run(tmp_path / "half", train={"epochs": 1})
    s_res, t_res = run(tmp_path / "half", resume=True, train={"epochs": 2})
    assert s_full["steps"] == 20 and s_full["epochs_completed"] == 2
    assert_same_run(tmp_path / "full", t_full, tmp_path / "half", t_res, s_full, s_res)
    # and the run really trained: a different seed gives different parameters
    _, t_other = run(tmp_path / "other", train={"epochs": 2, "seed": 4})
    assert not torch.equal(t_other.model.trunk.weight, t_full.model.trunk.weight)


def test_resume_mid_epoch_after_interruption(tmp_path: Path, monkeypatch) -> None:
    """Crash mid-epoch at step 8 (checkpoint at 6, evaluation at 4 and 8), plus half a row."""
    tr = {"epochs": None, "steps": 15, "checkpoint_every": 3, "eval_every": 4}
    s_full, t_full = run(tmp_path / "full", train=tr)
    monkeypatch.setattr(fakes, "CRASH_AT", 8)
    with pytest.raises(fakes.Crash):
        run(tmp_path / "cut", train=tr)
    monkeypatch.setattr(fakes, "CRASH_AT", None)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["position"]["step"] == 6
    with open(tmp_path / "cut" / "steps.csv", "a") as fh:  # what a kill may leave: half a row
        fh.write("8,1,0.4")
    s_res, t_res = run(tmp_path / "cut", resume=True, train=tr)
    assert_same_run(tmp_path / "full", t_full, tmp_path / "cut", t_res, s_full, s_res)


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path: Path) -> None:
    """A real SIGKILL of `mtopt train` mid-run, then --resume == an uninterrupted run."""
    raw = fakes.fake_recipe(
        model={"sleep": 0.03}, train={"epochs": 3, "checkpoint_every": 2, "eval_every": 7}
    )
    recipe = tmp_path / "r.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump(raw))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", fakes.CLI_PRELUDE, "train", str(recipe), "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last = out / "checkpoints" / "last.pt"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if last.exists() and load_checkpoint(last)["position"]["step"] >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)["position"]["step"]
    assert 5 <= killed_at < 30
    s_res, t_res = run(out, resume=True, **{k: v for k, v in raw.items() if k != "output"})
    s_full, t_full = run(tmp_path / "full", **{k: v for k, v in raw.items() if k != "output"})
    assert_same_run(tmp_path / "full", t_full, out, t_res, s_full, s_res)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "nan"
    with pytest.raises(RunError, match=r"step 5 .*non-finite loss \(t0=nan, t1=nan\).*last good"):
        run(out, model={"nan_at": 5}, train={"checkpoint_every": 2})
    ck = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ck["position"]["step"] == 4
    assert all(bool(torch.isfinite(v).all()) for v in ck["model"].values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite loss" in summary["error"]
    assert summary["steps"] == 4
    # the kept checkpoint equals the parameters of a healthy run after 4 steps
    _, t_ok = run(tmp_path / "ok", train={"epochs": None, "steps": 4})
    assert all(torch.equal(ck["model"][k], v) for k, v in t_ok.model.state_dict().items())


def test_single_class_task_gives_null_auc_and_warning(tmp_path: Path) -> None:
    with pytest.warns(SingleClassWarning, match=r"val split, task 't1'"):
        s, _ = run(tmp_path / "sc", data={"single_class_val_task": 1}, train={"epochs": 1})
    assert s["val"]["auc"]["t1"] is None
    assert s["val"]["auc_avg"] == s["val"]["auc"]["t0"]  # the mean of the defined ones
    assert s["test"]["auc"]["t1"] is not None  # test split still has both classes
    assert any("t1" in w for w in s["warnings"])
    on_disk = json.loads((tmp_path / "sc" / "summary.json").read_text())
    assert on_disk["val"]["auc"]["t1"] is None


def test_outputs_best_checkpoint_and_improvement(tmp_path: Path) -> None:
    out = tmp_path / "o"
    s, t = run(out, train={"epochs": 3}, output={"plots": True})
    for key in ("test", "val", "best_epoch", "seconds", "alpha", "solver_status"):
        assert key in s
    assert set(s["test"]["auc"]) == {"t0", "t1"}
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "alpha.png",
        "auc.png",
        "loss.png",
        "ranking.png",  # NE per task (the fake dataset declares no group and no funnel)
    ]
    metrics = rows(out / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == [10, 20, 30]
    vals = [float(r["val_auc_avg"]) for r in metrics]
    best_i = max(range(3), key=lambda i: vals[i])
    assert s["val"]["auc_avg"] == pytest.approx(vals[best_i])
    assert s["best_epoch"] == best_i + 1
    assert float(metrics[best_i]["test_auc_avg"]) == pytest.approx(s["test"]["auc_avg"])
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert best["step"] == s["best_step"]
    # training improved validation AUC over the untrained (same-seed) model
    from mtopt.train.metrics import evaluate

    _, model0, _ = build_components(recipe_from_dict(fakes.fake_recipe()))
    untrained = evaluate(model0, t.dataset, "val", 256).auc_avg
    assert s["val"]["auc_avg"] > untrained + 0.05
    assert s["alpha"]["t0"] == {"mean": 1.0, "min": 1.0, "max": 1.0}  # LS weights


def test_closure_methods_get_a_closure_on_the_same_batch(tmp_path: Path) -> None:
    s, t = run(tmp_path / "c", method={"name": "fake-closure"}, train={"epochs": 1})
    assert len(t.method.checks) == 10
    assert all(same and grad for same, grad in t.method.checks)
    assert s["solver_status"] == {"ok": 10}
    assert s["alpha"]["t1"]["mean"] == 0.5


def test_folder_and_resume_guards(tmp_path: Path) -> None:
    out = tmp_path / "g"
    with pytest.raises(InputError, match=r"no checkpoint to resume from"):
        run(out, resume=True)
    run(out, train={"epochs": 1})
    with pytest.raises(InputError, match=r"already holds a run; pass resume=True"):
        run(out, train={"epochs": 1})
    with pytest.raises(InputError, match=r"optimizer.lr: differs from the checkpoint's recipe"):
        run(out, resume=True, optimizer={"lr": 0.5})
    t = Trainer(recipe_from_dict(fakes.fake_recipe(train={"epochs": 1})), out)
    t.run(overwrite=True)
    assert not (out / "plots").exists()
    shutil.rmtree(out)


def test_tensorboard_missing_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(InputError) as err:
        run(tmp_path / "tb", output={"tensorboard": True})
    msg = str(err.value)
    assert "output.tensorboard: true needs the 'tensorboard' package" in msg and "\n" not in msg
    assert "pip install 'mtopt[tensorboard]'" in msg
    assert not (tmp_path / "tb").exists()
