"""``kind: ranking``: the table's cells against numpy's mean / sample std of the values the runs
reported (a fake trainer), undefined values left out of their cell; and one real tiny sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_helpers import write_recipe  # noqa: E402

from mtopt.sweep import Spec, SweepConfig, run_sweep  # noqa: E402

#: (method, seed) -> test metrics; pub's conversion GAUC is undefined for seed 1
VALUES = {
    (m, s): {
        "auc": {"click": 0.70 + d + 0.01 * s, "conversion": 0.80 + d - 0.01 * s},
        "gauc": {"click": 0.60 + d + 0.02 * s, "conversion": 0.65 + d + 0.01 * s},
        "ne": {"click": 0.95 - d + 0.005 * s, "conversion": 0.90 - d},
        "logloss": {"click": 0.45 - d, "conversion": 0.10 - d / 4 + 0.001 * s},
        "cvr_auc": 0.66 + d + 0.003 * s,
    }
    for m, d in (("ls", 0.0), ("pub", 0.02))
    for s in (0, 1, 2)
}
VALUES[("pub", 1)]["gauc"]["conversion"] = None


def fake_train(recipe, run_dir, *, source, observe):
    test = VALUES[(recipe["method"]["name"], recipe["train"]["seed"])]
    summary = {"tasks": ["click", "conversion"], "test": test, "val": test, "steps": 1}
    return summary, {"steps": 1, "step_seconds_mean": 0.1, "solves": 0}


def test_ranking_table_cells_are_mean_and_std_over_seeds(tmp_path: Path) -> None:
    cfg = SweepConfig(
        name="r",
        recipes=[str(write_recipe(tmp_path / "r.yaml"))],
        backbones=[Spec("mmoe")],
        methods=[Spec("ls"), Spec("pub")],
        seeds=[0, 1, 2],
        kind="ranking",
    )
    res = run_sweep(cfg, tmp_path / "out", train_fn=fake_train, progress=False)
    cells = {(c["row"], c["metric"], c["task"]): c for c in res.table.csv_rows}
    for m, row in (("ls", "MMoE"), ("pub", "MMoE+PUB")):
        for metric in ("auc", "gauc", "ne", "logloss", "cvr_auc"):
            for task in ("click", "conversion", None):
                if (metric == "cvr_auc") != (task is None):
                    continue
                vals = [VALUES[(m, s)][metric] for s in range(3)]
                vals = [v if task is None else v[task] for v in vals]
                vals = [v for v in vals if v is not None]
                c = cells[(row, metric, task)]
                assert c["n"] == len(vals)
                assert c["mean"] == pytest.approx(np.mean(vals), abs=1e-15)
                assert c["std"] == pytest.approx(np.std(vals, ddof=1), abs=1e-15)
    assert cells[("MMoE+PUB", "gauc", "conversion")]["n"] == 2  # the null is left out
    # best: highest AUC / GAUC / CVR AUC, lowest NE and log-loss -> PUB everywhere
    assert all(c["best"] == (c["row"] == "MMoE+PUB") for c in res.table.csv_rows)
    header = res.table.markdown.splitlines()[0]
    for name in ("click AUC", "click GAUC", "click NE", "conversion NE", "CVR AUC"):
        assert name in header
    assert "log-loss" not in header  # in table.csv / results.json only
    assert (tmp_path / "out" / "table.csv").is_file()


def test_real_tiny_ranking_sweep(tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", data={"n_users": 30})
    cfg = SweepConfig(
        name="real",
        recipes=[str(recipe)],
        backbones=[Spec("mmoe")],
        methods=[Spec("ls"), Spec("pub")],
        seeds=[0],
        kind="ranking",
    )
    res = run_sweep(cfg, tmp_path / "out", progress=False)
    assert all(r["status"] == "ok" for r in res.records)
    cells = {(c["row"], c["metric"], c["task"]): c for c in res.table.csv_rows}
    for rec, row in zip(res.records, ("MMoE", "MMoE+PUB")):
        assert cells[(row, "gauc", "click")]["mean"] == rec["test"]["gauc"]["click"]
        assert cells[(row, "ne", "conversion")]["mean"] == rec["test"]["ne"]["conversion"]
        assert cells[(row, "cvr_auc", None)]["mean"] == rec["test"]["cvr_auc"]
