"""Bitwise goldens: tiny runs, sweep plans, listings and toy points recorded before a refactor.

A failure here means a change altered results (parameters, optimizer state, logged metrics) or
user-visible names. If the change of last bits is deliberate, re-record the affected cases with
``python tests/golden/record.py CASE ...`` in a commit of its own that says why.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402

GOLDENS = json.loads((HERE / "goldens.json").read_text())


def _compare(got: dict, want: dict) -> None:
    for part in ("model", "method"):
        bad = sorted(k for k in want[part] if got[part].get(k) != want[part][k])
        extra = sorted(set(got[part]) - set(want[part]))
        assert not bad and not extra, f"{part}: differs at {bad[:5]}, new keys {extra[:5]}"
    assert got["steps_csv"] == want["steps_csv"], "steps.csv differs"
    assert got["summary"] == want["summary"]


@pytest.mark.parametrize("case", list(cases.CASES))
def test_training_golden(case: str, tmp_path: Path) -> None:
    got = cases.train(cases.recipe_dict(case), tmp_path / case)
    _compare(got, GOLDENS["train"][case])


@pytest.mark.parametrize("case", cases.RESUME_CASES)
def test_old_checkpoint_resumes_to_golden(case: str, tmp_path: Path) -> None:
    """A checkpoint written before the refactor (step RESUME_AT) resumes to the full run."""
    out = tmp_path / case
    (out / "checkpoints").mkdir(parents=True)
    shutil.copyfile(HERE / "ckpt" / f"{case}.pt", out / "checkpoints" / "last.pt")
    got = cases.train(cases.recipe_dict(case), out, resume=True)
    want = GOLDENS["train"][case]
    for part in ("model", "method"):
        assert got[part] == want[part], part
    for k in ("test", "val", "alpha", "solver_status", "steps"):
        assert got["summary"][k] == want["summary"][k], k


def test_sweep_plans(tmp_path: Path) -> None:
    assert cases.plan_keys(tmp_path / "sweep") == GOLDENS["plan"]


def test_list_output() -> None:
    assert cases.listing() == GOLDENS["list"]


def test_toy_points() -> None:
    assert cases.toy_points() == GOLDENS["toy"]
