"""The golden cases: tiny synthetic runs whose bitwise results must survive refactors.

Each case is a recipe (:data:`BASE` plus overrides) trained for :data:`STEPS` steps on CPU with
one thread. :func:`fingerprint` reduces a finished run to SHA-256 hashes of every model and
method-state tensor, ``steps.csv`` without timing columns and ``summary.json`` without seconds.
``record.py`` writes them to ``goldens.json``; ``test_goldens.py`` recomputes and compares.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

STEPS = 30

BASE: dict[str, Any] = {
    "data": {
        "name": "synthetic-ranking",
        "seed": 0,
        "n_train": 800,
        "n_val": 300,
        "n_test": 300,
        "cat_cardinalities": [20, 10, 5],
        "n_dense": 4,
        "conversion_rate": 0.3,
    },
    "model": {"name": "mmoe", "n_experts": 2, "expert_dim": 8, "embed_dim": 4, "tower_dims": [8]},
    "method": {"name": "pub"},
    "optimizer": {"name": "adam", "lr": 0.01, "batch_size": 100},
    "train": {"steps": STEPS, "seed": 0, "threads": 1, "eval_every": 15},
    "output": {"plots": False, "progress": False},
}

METHODS = [
    "adatask", "banditmtl", "cagrad", "clippy-adam", "dwa", "famo", "graddrop", "gradnorm",
    "imtl", "imtl-g", "imtl-l", "ls", "mgda", "mgda-ub", "nashmtl", "pcgrad", "pub",
    "pub-adatask", "pub-clippy", "rlw", "si", "uncertainty",
]  # fmt: skip

#: case id -> overrides of BASE (section -> fields)
CASES: dict[str, dict[str, dict[str, Any]]] = {
    **{f"method-{m}": {"method": {"name": m}} for m in METHODS},
    "method-drgrad": {"method": {"name": "drgrad"}, "model": {"name": "drgrad"}},
    "dwa-window-null": {
        "method": {"name": "dwa", "window": None},
        "train": {"steps": None, "epochs": 3},
    },  # fmt: skip
    "pub-exact": {"method": {"alpha_scale": "exact"}},
    "pub-frobenius-k10": {"method": {"alpha_scale": "frobenius", "solve_every": 10}},
    "pub-k10": {"method": {"solve_every": 10}},
    "pub-clippy-umm": {"method": {"umm": "clippy"}},
    "pub-adatask-umm": {"method": {"umm": "adatask"}},
    "pub-row-wise": {"method": {"embeddings": "row-wise"}},
    "pub-plain": {"method": {"embeddings": "plain"}},
    "pub-fixed-alpha": {"method": {"fixed_alpha": 1.0}},
    "pub-batched": {"method": {"backward": "batched"}},
    "pub-diagnostics": {"method": {"diagnostics": True}},
    "pub-adagrad": {"optimizer": {"name": "adagrad"}},
    "pub-rmsprop": {"optimizer": {"name": "rmsprop"}},
    "pub-ple": {"model": {"name": "ple", "expert_dim": 8}},
    "pub-shared-bottom": {"model": {"name": "shared-bottom"}},
    "nashmtl-k1": {"method": {"name": "nashmtl", "update_weights_every": 1}},
    "nashmtl-k10": {"method": {"name": "nashmtl", "update_weights_every": 10}},
}

#: cases whose checkpoint (written before a refactor) must resume to the recorded hashes
RESUME_CASES = ("method-pub", "nashmtl-k10", "method-famo")
#: the step at which the resume checkpoints are taken
RESUME_AT = 12

#: columns / keys holding wall-clock times (not reproducible, not part of a golden)
TIMING = {
    "solve_seconds", "step_seconds", "seconds", "train_seconds", "eval_seconds", "cpu_seconds",
    "samples_per_second", "checkpoint", "dir",
}  # fmt: skip


def recipe_dict(case: str, steps: int | None = None) -> dict[str, Any]:
    """The raw recipe of ``case`` (``steps`` replaces the length when given)."""
    raw = copy.deepcopy(BASE)
    for section, fields in CASES[case].items():
        if section == "model" and "name" in fields and fields["name"] != "mmoe":
            raw["model"] = {"name": fields["name"], "embed_dim": 4}
            if fields["name"] in ("drgrad", "shared-bottom"):
                raw["model"]["tower_dims"] = [8]
        raw[section].update(fields)
    if steps is not None:
        raw["train"].update({"steps": steps, "epochs": None})
    return raw


def _hash_tensor(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous().reshape(-1)
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def hash_tree(obj: Any, path: str = "") -> dict[str, str]:
    """path -> SHA-256 for every tensor (and repr for every other leaf) of a nested state."""
    out: dict[str, str] = {}
    if isinstance(obj, torch.Tensor):
        out[path] = _hash_tensor(obj)
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            out.update(hash_tree(obj[k], f"{path}.{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(hash_tree(v, f"{path}[{i}]"))
    elif isinstance(obj, float):
        out[path] = float(obj).hex()
    else:
        out[path] = repr(obj)
    return out


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _row(r: dict[str, str]) -> dict[str, Any]:
    if r.get("extra"):
        r = {**r, "extra": json.loads(r["extra"])}
    return r


def fingerprint(out: Path) -> dict[str, Any]:
    """The golden of a finished run folder."""
    from mtopt.train.checkpoint import load_checkpoint

    ck = load_checkpoint(out / "checkpoints" / "last.pt")
    with open(out / "steps.csv", newline="") as fh:
        steps = [_strip(_row(r)) for r in csv.DictReader(fh)]
    summary = _strip(json.loads((out / "summary.json").read_text()))
    return {
        "model": hash_tree(ck["model"]),
        "method": hash_tree(ck["method"]),
        "steps_csv": hashlib.sha256(json.dumps(steps, sort_keys=True).encode()).hexdigest(),
        "summary": summary,
    }


def train(raw: dict[str, Any], out: Path, resume: bool = False) -> dict[str, Any]:
    """Train ``raw`` into ``out`` (one thread) and return the run's fingerprint."""
    from mtopt.config import recipe_from_dict
    from mtopt.train.trainer import Trainer

    torch.set_num_threads(1)
    Trainer(recipe_from_dict(copy.deepcopy(raw), "golden.yaml"), out).run(resume=resume)
    return fingerprint(out)


#: toy runs: (method, start) with a short horizon
TOY_METHODS = ("ls", "mgda", "pcgrad", "cagrad", "imtl_g", "nashmtl", "famo", "pub_exact",
               "pub_frobenius")  # fmt: skip
TOY_START = (-8.5, 7.5)
TOY_STEPS = 300


def toy_points() -> dict[str, Any]:
    """Final point, losses and counters of each toy method after :data:`TOY_STEPS` steps."""
    from mtopt.toy import run_toy

    out = {}
    for m in TOY_METHODS:
        r = run_toy(m, TOY_START, steps=TOY_STEPS, seed=0)
        out[m] = {
            "final_point": [float(v).hex() for v in r.final_point],
            "final_losses": [float(v).hex() for v in r.final_losses],
            "stats": {k: repr(v) for k, v in sorted(r.stats.items())},
        }
    return out


def plan_keys(runs_dir: Path) -> dict[str, list[list[str]]]:
    """For every experiment x size: each planned run's key and folder name."""
    from mtopt.sweep import EXPERIMENTS, SIZES, experiment, plan

    out = {}
    for name in EXPERIMENTS:
        for size in SIZES:
            runs = plan(experiment(name, size), runs_dir)
            out[f"{name}-{size}"] = [[r.key, r.run_dir.name] for r in runs]
    return out


def listing() -> dict[str, str]:
    """``mtopt list KIND`` output for every kind, each in a fresh process (built-ins only)."""
    import subprocess
    import sys

    out = {}
    for kind in ("solvers", "backbones", "methods", "umms", "datasets"):
        res = subprocess.run(
            [sys.executable, "-m", "mtopt", "list", kind], capture_output=True, text=True
        )
        out[kind] = f"{res.returncode}\n{res.stdout}"
    return out
