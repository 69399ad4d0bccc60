"""A run's output folder: creating it, refusing or replacing an old run, checking a resume
against the checkpoint's recipe, and the ``summary.json`` document (see :mod:`mtopt.train.trainer`
for the folder's files)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from mtopt.config import Recipe
from mtopt.errors import InputError

#: recipe fields that may differ between a checkpoint and the recipe that resumes it
RESUMABLE_CHANGES = ("train.epochs", "train.steps", "train.threads", "train.dist_timeout")
#: files a run owns in its output folder (removed by ``overwrite=True``)
RUN_FILES = ("steps.csv", "metrics.csv", "summary.json", "recipe.yaml")
RUN_DIRS = ("checkpoints", "plots", "tensorboard")


def prepare_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Check ``out`` for ``resume`` / a fresh run; with ``overwrite`` remove the old run's files."""
    last = out / "checkpoints" / "last.pt"
    if resume:
        if not last.is_file():
            raise InputError(
                f"resume: no checkpoint to resume from ({last} is missing); start the run "
                "without resuming"
            )
        return
    if last.exists() or (out / "summary.json").exists():
        if not overwrite:
            raise InputError(
                f"out_dir: {out} already holds a run; pass resume=True to continue it, "
                "overwrite=True to replace it, or another out_dir"
            )
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def check_resume_recipe(recipe: Recipe, saved: dict[str, Any], source: str) -> None:
    """Refuse to resume when ``recipe`` differs from the checkpoint's (``saved``) beyond
    :data:`RESUMABLE_CHANGES`."""
    try:  # fields added to the schema since the checkpoint was written take their defaults
        saved = Recipe.model_validate(saved).to_dict()
    except ValueError:
        pass
    now = _flat({k: v for k, v in recipe.to_dict().items() if k != "output"})
    then = _flat({k: v for k, v in saved.items() if k != "output"})
    diff = sorted(
        k for k in set(now) | set(then) if k not in RESUMABLE_CHANGES and now.get(k) != then.get(k)
    )
    if diff:
        k = diff[0]
        raise InputError(
            f"{source}: {k}: differs from the checkpoint's recipe "
            f"({then.get(k)!r} there, {now.get(k)!r} here; {len(diff)} field(s) differ: "
            f"{', '.join(diff[:5])}); only {', '.join(RESUMABLE_CHANGES)} may change when "
            "resuming"
        )


def dump_yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def summary(t: Any, status: str) -> dict[str, Any]:
    """The ``summary.json`` document of trainer ``t`` (a :class:`~mtopt.train.trainer.Trainer`)
    at its current state."""
    r = t.recipe
    best = t.best or {}
    empty = {"auc": {k: None for k in t.tasks}, "auc_avg": None}
    has_alpha = any(s.count for s in t.alpha)
    return {
        "status": status,
        "recipe": t.source,
        "data": r.data.name,
        "model": r.model.name,
        "method": r.method.name,
        "seed": r.train.seed,
        "tasks": list(t.tasks),
        "test": best.get("test", empty),
        "val": best.get("val", empty),
        "best_epoch": best.get("epoch"),
        "best_step": best.get("step"),
        "last_val": t.last_val,
        "steps": t.step,
        "epochs_completed": t.epoch,
        "samples": t.samples,
        "seconds": round(t.seconds, 3),
        "train_seconds": round(t.train_seconds, 3),
        "eval_seconds": round(t.eval_seconds, 3),
        "samples_per_second": _finite(t.samples / t.train_seconds if t.train_seconds > 0 else None),
        "processes": t.dist.world_size,
        "alpha": ({k: s.summary() for k, s in zip(t.tasks, t.alpha)} if has_alpha else None),
        "solver_status": dict(sorted(t.status_counts.items())),
        "warnings": list(t.warnings),
        "checkpoint": str(t.ckpt_dir / "best.pt") if t.best else None,
    }
