"""Several processes on one study, and an interrupted study resumed: no setting is trained
twice, no study gets more than its budget, and the budget is filled."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_helpers import LrTrainer, tiny_recipe  # noqa: E402

from mtopt.sweep import Spec  # noqa: E402
from mtopt.tune import TuneConfig, cells_of, open_storage, open_study, run_study  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 6


def _cell(folder: Path):
    config = TuneConfig(
        name="split",
        recipes=[str(folder / "tiny.yaml")],
        backbones=[Spec("mmoe")],
        methods=[Spec("ls")],
        n_trials=BUDGET,
    )
    return cells_of(config)[0]


def test_two_processes_split_one_study_without_training_a_setting_twice(tmp_path):
    from optuna.trial import TrialState

    tiny_recipe(tmp_path)
    cell = _cell(tmp_path)
    open_study(open_storage(f"sqlite:///{tmp_path / 'study.db'}"), cell.study_name)  # tables
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    worker = Path(__file__).with_name("worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(tmp_path), me, other, str(BUDGET)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    calls = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    trained = [c["lr"] for c in calls]
    study = open_study(open_storage(f"sqlite:///{tmp_path / 'study.db'}"), cell.study_name)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trained) == len(set(trained)) == BUDGET  # every setting trained once
    assert sorted(t.params["optimizer.lr"] for t in done) == sorted(trained)
    assert len({c["pid"] for c in calls}) == 2  # both processes took trials
    assert all(t.user_attrs["skipped"] in ("surplus", "duplicate") for t in study.trials
               if t.state == TrialState.FAIL)  # fmt: skip


def test_an_interrupted_trial_is_trained_again_and_finished_ones_are_not(tmp_path):
    from optuna.trial import TrialState

    tiny_recipe(tmp_path)
    cell = _cell(tmp_path)
    study = open_study(open_storage(f"sqlite:///{tmp_path / 'study.db'}"), cell.study_name)
    args = dict(budget=BUDGET, seeds=[0], overrides=[], runs_dir=tmp_path / "runs")
    first = LrTrainer()
    run_study(study, (cell.recipe, cell.backbone, cell.method), cell.space, budget=2,
              seeds=[0], overrides=[], runs_dir=tmp_path / "runs", train_fn=first)  # fmt: skip
    # a trial left RUNNING by a process of this host that died (its pid no longer exists)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t = study.ask()
    lost = t.suggest_float("optimizer.lr", 1e-4, 3e-2, log=True)
    t.set_user_attr("host", socket.gethostname())
    t.set_user_attr("pid", dead.pid)
    second = LrTrainer()
    run_study(study, (cell.recipe, cell.backbone, cell.method), cell.space, train_fn=second,
              **args)  # fmt: skip
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == BUDGET
    assert study.trials[t.number].state == TrialState.FAIL
    second_lrs = [c["lr"] for c in second.calls]
    assert lost in second_lrs  # the interrupted setting is trained again
    assert not {c["lr"] for c in first.calls} & set(second_lrs)  # finished ones are not
    assert len(second_lrs) == BUDGET - 2
