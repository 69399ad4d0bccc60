"""DWA with ``window: null`` (the paper's per-epoch loss averages) through the real trainer.

Liu, Johns & Davison (CVPR 2019, eq. 1): from epoch 3 on, wᵢ = n·softmax(rᵢ/T) with
rᵢ = L̄ᵢ(epoch−1) / L̄ᵢ(epoch−2), the epoch means of the task losses. The reference is computed
here from the task losses the trainer logged in steps.csv, independently of the method's code.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from mtopt.config import recipe_from_dict
from mtopt.train.trainer import Trainer

RAW = {
    "data": {"name": "synthetic-ranking", "seed": 0, "n_train": 400, "n_val": 200, "n_test": 200,
             "cat_cardinalities": [20, 10, 5], "n_dense": 4, "conversion_rate": 0.3},
    "model": {"name": "mmoe", "n_experts": 2, "expert_dim": 8, "embed_dim": 4, "tower_dims": [8]},
    "method": {"name": "dwa", "window": None},
    "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 100},
    "train": {"epochs": 4, "seed": 0, "threads": 1},
    "output": {"plots": False, "progress": False},
}  # fmt: skip


def test_dwa_epoch_mode_weights_follow_epoch_means(tmp_path: Path) -> None:
    Trainer(recipe_from_dict(RAW, "dwa.yaml"), tmp_path / "r").run()
    with open(tmp_path / "r" / "steps.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    tasks = ("click", "conversion")
    by_epoch: dict[int, list[dict]] = {}
    for r in rows:
        by_epoch.setdefault(int(r["epoch"]), []).append(r)
    assert sorted(by_epoch) == [1, 2, 3, 4]
    means = {
        e: [sum(float(r[f"loss_{t}"]) for r in rs) / len(rs) for t in tasks]
        for e, rs in by_epoch.items()
    }
    for e, rs in by_epoch.items():
        if e <= 2:
            want = [1.0, 1.0]
        else:
            ratio = [a / b for a, b in zip(means[e - 1], means[e - 2])]
            ex = [math.exp(x / 2.0) for x in ratio]
            want = [2 * v / sum(ex) for v in ex]
        for r in rs:
            got = [float(r[f"weight_{t}"]) for t in tasks]
            assert all(abs(g - w) < 1e-9 for g, w in zip(got, want)), (e, got, want)
    # the weights do move away from 1 once two epochs are seen (the bug: they stayed at 1)
    assert any(abs(float(r["weight_click"]) - 1.0) > 1e-6 for r in by_epoch[3])
