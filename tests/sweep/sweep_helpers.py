"""Shared helpers of the sweep tests: tiny recipe files and a fake trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: a recipe small enough for a real run in about a second
TINY = {
    "data": {
        "name": "synthetic-ranking",
        "seed": 0,
        "n_train": 600,
        "n_val": 400,
        "n_test": 400,
        "cat_cardinalities": [20, 10, 5],
        "n_dense": 4,
        "conversion_rate": 0.3,
    },
    "model": {"name": "mmoe", "n_experts": 2, "expert_dim": 8, "embed_dim": 4, "tower_dims": [8]},
    "method": {"name": "pub", "solve_every": 10},
    "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 200},
    "train": {"steps": 4, "seed": 0},
    "output": {"plots": False, "progress": False},
}


def write_recipe(path: Path, **changes: Any) -> Path:
    """Write :data:`TINY` (sections updated with ``changes``) to ``path``."""
    raw = {k: dict(v) for k, v in TINY.items()}
    for section, values in changes.items():
        raw[section].update(values)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class FakeTrainer:
    """Stands in for the trainer: counts calls, returns AUCs from a table of means.

    ``means[(method_name, backbone_name)] = (auc_task0, auc_task1)``; each seed adds
    ``noise * (seed - 1)`` so that the seeds differ (a known, symmetric spread).
    """

    def __init__(
        self,
        means: dict[tuple[str, str], tuple[float, float]] | None = None,
        noise: float = 0.001,
        fail: set[str] | None = None,
        cosines: dict[str, tuple[list[float], list[float]]] | None = None,
        observations: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.means = means or {}
        #: per method name: (cos_task per step, cos_shared per step) for diagnostics sweeps
        self.cosines = cosines or {}
        #: per method name: extra observation fields (timing, solver statuses)
        self.observations = observations or {}
        self.noise = noise
        self.fail = fail or set()
        self.calls: list[dict[str, Any]] = []

    def __call__(self, recipe: dict[str, Any], run_dir: Path, *, source: str, observe: Any):
        self.calls.append(recipe)
        method, backbone = recipe["method"]["name"], recipe["model"]["name"]
        if method in self.fail:
            raise RuntimeError(f"boom in {method}")
        seed = recipe["train"]["seed"]
        a, b = self.means.get((method, backbone), (0.7, 0.8))
        shift = self.noise * (seed - 1)
        auc = {"click": a + shift, "conversion": b + shift}
        test = {"auc": auc, "auc_avg": (auc["click"] + auc["conversion"]) / 2}
        summary = {
            "tasks": ["click", "conversion"],
            "test": test,
            "val": test,
            "steps": 4,
            "epochs_completed": 1,
            "seconds": 1.0,
        }
        obs: dict[str, Any] = {
            "steps": 4,
            "step_seconds_mean": 0.1,
            "solves": 0,
            "solve_seconds_mean": None,
        }
        obs.update(self.observations.get(method, {}))
        if method in self.cosines:
            ct, cs = self.cosines[method]
            obs.update(cos_task=list(ct), cos_shared=list(cs), task_grad_cos=[0.1] * len(ct))
        return summary, obs
