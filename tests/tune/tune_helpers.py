"""Shared helpers of the tuning tests: a tiny recipe and a fake trainer whose validation AUC is
a known function of the learning rate (so the best trial is checkable)."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sweep"))

from sweep_helpers import write_recipe  # noqa: E402

__all__ = ["LrTrainer", "tiny_recipe", "val_of"]


def val_of(lr: float) -> float:
    """The fake's validation AUC average: peaks at lr = 10^-2.5."""
    return 0.8 - 0.01 * (math.log10(lr) + 2.5) ** 2


def tiny_recipe(folder: Path) -> Path:
    return write_recipe(folder / "tiny.yaml", train={"steps": 2, "seed": 0})


class LrTrainer:
    """Stands in for the trainer: AUC from :func:`val_of`, one JSON line per call in ``log``
    (pid, method, lr, seed), an optional pause (so that two processes interleave)."""

    def __init__(self, log: Path | None = None, pause: float = 0.0) -> None:
        self.log, self.pause, self.calls = log, pause, []

    def __call__(self, recipe: dict[str, Any], run_dir: Path, *, source: str, observe: Any):
        lr = float(recipe["optimizer"]["lr"])
        entry = {
            "pid": os.getpid(),
            "method": recipe["method"],
            "lr": lr,
            "seed": recipe["train"]["seed"],
        }
        self.calls.append(entry)
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        time.sleep(self.pause)
        v = val_of(lr) + 0.001 * recipe["train"]["seed"]
        m = recipe["method"]
        bonus = 0.002 if m.get("alpha_scale") == "exact" else 0.0
        auc = {"click": v + bonus, "conversion": v + bonus}
        summary = {
            "tasks": ["click", "conversion"],
            "test": {"auc": auc, "auc_avg": v + bonus},
            "val": {"auc": auc, "auc_avg": v + bonus},
            "steps": 2,
            "epochs_completed": 1,
            "seconds": 0.01,
        }
        return summary, None
