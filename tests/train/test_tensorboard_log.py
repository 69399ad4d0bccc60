"""The ranking metrics reach TensorBoard: the scalars logged at each evaluation equal the
values of the same evaluation in metrics.csv (a recording stand-in for the writer), and, when
the ``tensorboard`` extra is installed, the event files hold them."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from mtopt.config import recipe_from_dict
from mtopt.train.logs import read_csv
from mtopt.train.trainer import Trainer

RECIPE = {
    "data": {
        "name": "synthetic-ranking",
        "n_train": 600,
        "n_val": 300,
        "n_test": 300,
        "cat_cardinalities": [20, 10],
        "n_dense": 3,
        "conversion_rate": 0.3,
        "n_users": 40,  # GAUC over users
    },
    "model": {"name": "mmoe", "n_experts": 2, "expert_dim": 8, "embed_dim": 4, "tower_dims": [8]},
    "method": {"name": "ls"},
    "optimizer": {"lr": 0.01, "batch_size": 100},
    "train": {"steps": 6, "eval_every": 3, "threads": 1},
    "output": {"plots": True, "progress": False, "tensorboard": True},
}


class Recorder:
    """Stands in for :class:`mtopt.train.logs.TensorBoardLog`."""

    logged: list[tuple[int, dict]] = []

    def __init__(self, log_dir, purge_step=None) -> None:
        Recorder.logged = []

    def scalars(self, step, values) -> None:
        Recorder.logged.append((step, dict(values)))

    def close(self) -> None:
        pass


def test_evaluation_scalars_match_metrics_csv(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", types.ModuleType("tensorboard"))
    monkeypatch.setattr("mtopt.train.steplog.TensorBoardLog", Recorder)
    out = tmp_path / "run"
    s = Trainer(recipe_from_dict(RECIPE, "tb.yaml"), out).run()
    assert s["ranking"] == {"group": "user", "funnel": ["click", "conversion"]}
    evals = {st: v for st, v in Recorder.logged if "val/auc_avg" in v}
    rows = read_csv(out / "metrics.csv")
    assert sorted(evals) == [int(r["step"]) for r in rows] == [3, 6]
    for r in rows:
        v = evals[int(r["step"])]
        for t in ("click", "conversion"):
            for m in ("auc", "logloss", "ne", "gauc"):
                assert v[f"val/{m}_{t}"] == pytest.approx(r[f"val_{m}_{t}"], rel=1e-15)
        assert v["val/gauc_avg"] == pytest.approx(r["val_gauc_avg"], rel=1e-15)
        assert v["val/cvr_auc"] == pytest.approx(r["val_cvr_auc"], rel=1e-15)
        assert ("test/ne_click" in v) == (r["best"] == 1)
    best = evals[s["best_step"]]
    assert best["test/gauc_click"] == s["test"]["gauc"]["click"]
    assert best["test/cvr_auc"] == s["test"]["cvr_auc"]
    assert (out / "plots" / "ranking.png").is_file()


def test_event_files_hold_the_ranking_metrics(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    s = Trainer(recipe_from_dict(RECIPE, "tb.yaml"), out).run()
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"val/ne_click", "val/gauc_conversion", "val/cvr_auc", "test/gauc_avg"} <= tags
    last = acc.Scalars("val/gauc_avg")[-1]
    assert last.step == 6
    assert last.value == pytest.approx(s["last_val"]["gauc_avg"], rel=1e-6)  # float32 events
