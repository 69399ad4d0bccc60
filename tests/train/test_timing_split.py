"""summary.json splits the loop's time: train_seconds (steps) and eval_seconds (evaluations)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mtopt_train_fakes as fakes  # noqa: E402

import mtopt.train.evaluation as evaluation_mod  # noqa: E402
from mtopt.config import recipe_from_dict  # noqa: E402
from mtopt.train.checkpoint import load_checkpoint  # noqa: E402
from mtopt.train.trainer import Trainer  # noqa: E402

STEP_SLEEP = 0.01  # per training forward (one per step for LS)
EVAL_SLEEP = 0.15  # per evaluated split


@pytest.fixture
def slow_eval(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Evaluation sleeps EVAL_SLEEP per split; returns the list of evaluated splits."""
    calls: list[str] = []
    real = evaluation_mod.evaluate

    def evaluate(model, dataset, split, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append(split)
        time.sleep(EVAL_SLEEP)
        return real(model, dataset, split, *args, **kwargs)

    monkeypatch.setattr(evaluation_mod, "evaluate", evaluate)
    return calls


def run(out: Path, epochs: int, resume: bool = False) -> dict:
    raw = fakes.fake_recipe(model={"sleep": STEP_SLEEP, "dropout": 0.0}, train={"epochs": epochs})
    Trainer(recipe_from_dict(raw), out).run(resume=resume)
    return json.loads((out / "summary.json").read_text())


def check_split(s: dict, steps: int, n_evals: int) -> None:
    assert s["train_seconds"] > 0 and s["eval_seconds"] > 0
    # rounded to the millisecond each: 2 ms slack
    assert s["train_seconds"] + s["eval_seconds"] <= s["seconds"] + 0.002
    assert s["train_seconds"] >= steps * STEP_SLEEP  # every step's forward slept
    assert s["eval_seconds"] >= n_evals * EVAL_SLEEP  # every evaluation slept
    # the evaluations are not in train_seconds: seconds holds both
    assert s["seconds"] >= steps * STEP_SLEEP + n_evals * EVAL_SLEEP
    # from the unrounded train_seconds: within the millisecond rounding of the summary's
    ts, n = s["train_seconds"], s["samples"]
    assert n / (ts + 0.0005) <= s["samples_per_second"] <= n / (ts - 0.0005)
    assert s["samples_per_second"] > s["samples"] / s["seconds"]


def test_train_and_eval_seconds(tmp_path: Path, slow_eval: list[str]) -> None:
    s = run(tmp_path / "a", epochs=2)
    steps = s["steps"]
    n_train = fakes.FakeRanking(rows=600).num_rows("train")
    assert steps == 2 * -(-n_train // 64)  # two epochs of batches of 64
    check_split(s, steps, len(slow_eval))
    assert len(slow_eval) >= 2  # val after each epoch (+ test when it improved)


def test_resume_accumulates_both(tmp_path: Path, slow_eval: list[str]) -> None:
    out = tmp_path / "r"
    first = run(out, epochs=1)
    n_first = len(slow_eval)
    ck = load_checkpoint(out / "checkpoints" / "last.pt")["trainer"]
    assert ck["train_seconds"] > 0 and ck["eval_seconds"] >= n_first * EVAL_SLEEP
    second = run(out, epochs=2, resume=True)
    n_second = len(slow_eval) - n_first
    assert n_second >= 1 and second["steps"] == 2 * first["steps"]
    # the resumed run adds its own steps and evaluations to the checkpoint's times
    assert second["train_seconds"] >= ck["train_seconds"] + first["steps"] * STEP_SLEEP
    assert second["eval_seconds"] >= ck["eval_seconds"] + n_second * EVAL_SLEEP
    assert second["seconds"] >= ck["seconds"] + second["train_seconds"] - ck["train_seconds"]
    check_split(second, second["steps"], len(slow_eval))


def test_resume_checkpoint_from_before_the_split(tmp_path: Path) -> None:
    """A checkpoint without train/eval seconds and without data.shard still resumes: its time
    counts as training, the recipe's new field takes its default."""
    from mtopt.train.checkpoint import save_checkpoint

    out = tmp_path / "old"
    run(out, epochs=1)
    path = out / "checkpoints" / "last.pt"
    ck = load_checkpoint(path)
    del ck["trainer"]["train_seconds"], ck["trainer"]["eval_seconds"]
    del ck["recipe"]["data"]["shard"]
    ck["trainer"]["seconds"] = old = 100.0
    save_checkpoint(path, ck)
    s = run(out, epochs=2, resume=True)
    assert s["train_seconds"] >= old and 0 < s["eval_seconds"] < old
    assert s["train_seconds"] + s["eval_seconds"] <= s["seconds"] + 0.002
