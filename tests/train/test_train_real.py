"""The trainer on the real components (synthetic-ranking, mmoe, pub) in a tiny configuration."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from mtopt.config import apply_overrides, recipe_from_dict
from mtopt.registry import registry
from mtopt.train.build import build_components
from mtopt.train.checkpoint import load_checkpoint
from mtopt.train.metrics import evaluate
from mtopt.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "data.n_train=3072",
    "data.n_val=2048",
    "data.n_test=2048",
    "model.expert_dim=16",
    "model.embed_dim=4",
    "model.tower_dims=[8]",
    "optimizer.batch_size=256",
    "optimizer.lr=0.01",
    "train.threads=1",
    "output.plots=false",
    "output.progress=false",
]


def quickstart(*overrides: str):
    raw = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
    if not registry.has("method", raw["method"]["name"]):
        pytest.skip(f"method {raw['method']['name']!r} is not registered yet")
    apply_overrides(raw, [*TINY, *overrides])
    return recipe_from_dict(raw, "quickstart.yaml")


def steps(out: Path) -> list[dict]:
    """steps.csv without the solve timings."""
    with open(out / "steps.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "solve_seconds"} for r in csv.DictReader(fh)]


def test_pub_resume_is_bitwise(tmp_path: Path) -> None:
    r2 = quickstart("train.epochs=2")
    full = Trainer(r2, tmp_path / "full")
    s_full = full.run()
    Trainer(quickstart("train.epochs=1"), tmp_path / "half").run()
    half = Trainer(r2, tmp_path / "half")
    s_half = half.run(resume=True)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, half.model.state_dict()[k]), k
    assert s_full["val"] == s_half["val"] and s_full["test"] == s_half["test"]
    assert s_full["alpha"] == s_half["alpha"]
    assert s_full["solver_status"] == s_half["solver_status"]
    assert steps(tmp_path / "full") == steps(tmp_path / "half")
    # the method's own state (moments, alpha, counters) round-trips through weights_only
    ck = load_checkpoint(tmp_path / "half" / "checkpoints" / "last.pt")
    assert ck["position"] == {"step": s_full["steps"], "epoch": 2, "batch": 0}


def test_training_improves_validation_auc(tmp_path: Path) -> None:
    recipe = quickstart("train.epochs=2")
    ds, model0, _ = build_components(recipe)
    untrained = evaluate(model0, ds, "val", 1024).auc_avg
    s = Trainer(recipe, tmp_path / "t").run()
    assert s["val"]["auc_avg"] > untrained + 0.1, (untrained, s["val"])
    assert s["test"]["auc_avg"] > 0.6
    assert set(s["alpha"]) == {"click", "conversion"}
    assert sum(s["solver_status"].values()) == s["steps"]


def test_pub_diagnostics_reach_steps_csv(tmp_path: Path) -> None:
    """PUB's per-step diagnostics (paper §III: cosines, Diff eq. (1)) are logged by the trainer."""
    import json
    import math

    Trainer(quickstart("train.steps=3", "method.diagnostics=true"), tmp_path / "d").run()
    rows = steps(tmp_path / "d")
    assert len(rows) == 3
    for r in rows:
        extra = json.loads(r["extra"])
        for key in ("cos_shared", "cos_task", "diff"):
            assert math.isfinite(extra[key]), key
        assert -1.0 <= extra["cos_shared"] <= 1.0 and -1.0 <= extra["cos_task"] <= 1.0
        # Diff, eq. (1): 2|Sim_task - Sim_share| / |Sim_task + Sim_share|
        a, b = extra["cos_task"], extra["cos_shared"]
        assert extra["diff"] == pytest.approx(2 * abs(a - b) / abs(a + b), rel=1e-6)


@pytest.mark.parametrize("embeddings", ["balanced", "row-wise"])
def test_weighted_pub_logs_its_path_and_resumes_bitwise(tmp_path: Path, embeddings: str) -> None:
    """between_solves=weighted through the trainer: steps.csv's weighted_step follows the
    schedule (solve every 3, tolerance 1: every non-solve step), and resuming across epochs
    reproduces the uninterrupted run bit for bit."""
    over = [
        "method.solve_every=3",
        "method.between_solves=weighted",
        "method.weighted_tol=1.0",
        f"method.embeddings={embeddings}",
    ]
    full = Trainer(quickstart("train.epochs=2", *over), tmp_path / "full")
    s_full = full.run()
    Trainer(quickstart("train.epochs=1", *over), tmp_path / "half").run()
    half = Trainer(quickstart("train.epochs=2", *over), tmp_path / "half")
    s_half = half.run(resume=True)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, half.model.state_dict()[k]), k
    assert s_full["test"] == s_half["test"]
    rows = steps(tmp_path / "full")
    assert steps(tmp_path / "half") == rows
    got = [json.loads(r["extra"])["weighted_step"] for r in rows]
    assert got == [0.0 if (i % 3 == 0) else 1.0 for i in range(len(rows))]
    assert all(r["solver_status"] == ("ok" if i % 3 == 0 else "reused") for i, r in enumerate(rows))
