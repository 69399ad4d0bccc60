"""A run's output folder: creating it, refusing or replacing an old run, checking a resume
against the checkpoint's recipe, and the ``summary.json`` document (see :mod:`mtopt.train.trainer`
for the folder's files)."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mtopt.config import Recipe
from mtopt.errors import InputError

#: recipe fields that may differ between a checkpoint and the recipe that resumes it
RESUMABLE_CHANGES = ("train.epochs", "train.steps", "train.threads", "train.dist_timeout")
#: files a run owns in its output folder (``overwrite=True`` replaces exactly these)
RUN_FILES = ("steps.csv", "metrics.csv", "summary.json", "recipe.yaml")
RUN_DIRS = ("checkpoints", "plots", "tensorboard")
#: the files a run writes inside :data:`RUN_DIRS` (``tensorboard/``: its event files)
RUN_DIR_FILES = {
    "checkpoints": ("last.pt", "best.pt"),
    "plots": ("loss.png", "auc.png", "alpha.png"),
}
#: the hidden folder an old run is moved into while ``overwrite=True`` starts the new one
ASIDE_PREFIX = ".mtopt-replaced-"
#: the file written into that folder once every file of the old run is in it
ASIDE_COMPLETE = ".complete"


def _own_files(out: Path) -> list[Path]:
    """The files of a run in ``out`` (relative paths), existing ones only."""
    found = [Path(n) for n in RUN_FILES if (out / n).is_file()]
    for d, names in RUN_DIR_FILES.items():
        found += [Path(d, n) for n in names if (out / d / n).is_file()]
    tb = out / "tensorboard"
    if tb.is_dir():
        found += [p.relative_to(out) for p in tb.glob("events.out.tfevents.*") if p.is_file()]
    return found


def _stale_tmp(out: Path) -> list[Path]:
    """Temporary files of this module's atomic writes (:func:`mtopt.io.atomic_write`) that a
    killed process left behind: ``.<run file>.<random>.tmp``."""
    found = []
    for d, names in (("", RUN_FILES), *RUN_DIR_FILES.items()):
        folder = out / d
        if folder.is_dir():
            for n in names:
                found += [p for p in folder.glob(f".{n}.*.tmp") if p.is_file()]
    return found


def _writable_place(path: Path, label: str) -> None:
    """``path`` is or can become a folder that this process can write into."""
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        what = "is a file" if p == path else f"lies under {p}, which is a file"
        raise InputError(f"{label}: {path} {what}, not a folder; choose another out_dir")
    if p.exists() and not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"{label}: {p} is not writable; choose another out_dir")


def check_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Everything :func:`prepare_dir` will need, checked without changing the disk."""
    _writable_place(out, "out_dir")
    last = out / "checkpoints" / "last.pt"
    if resume:
        if not last.is_file():
            raise InputError(
                f"resume: no checkpoint to resume from ({last} is missing); start the run "
                "without resuming"
            )
        _writable_place(out / "checkpoints", "out_dir")
        return
    if (last.exists() or (out / "summary.json").exists()) and not overwrite:
        raise InputError(
            f"out_dir: {out} already holds a run; pass resume=True to continue it, "
            "overwrite=True to replace it, or another out_dir"
        )
    for d in RUN_DIRS:
        if (out / d).exists() and not (out / d).is_dir():
            raise InputError(f"out_dir: {out / d} is a file where the run writes a folder")


class RunFolder:
    """The disk side of a run's output folder, changed only after :func:`check_dir` and the
    whole run were validated.

    :meth:`prepare` creates the folder, removes stale temporary files and, with ``overwrite``,
    moves the old run's own files into a hidden folder (marked :data:`ASIDE_COMPLETE` once they
    are all there). :meth:`commit` (called once the new run has written its first checkpoint)
    deletes them; :meth:`rollback` (the new run failed first) removes what the new run wrote,
    puts the old run back and removes a folder it created. A process killed in between leaves
    the hidden folder; :func:`recover` finishes the job at the next start.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.created: list[Path] = []
        self.aside: Path | None = None
        self.committed = False

    def prepare(self, resume: bool, overwrite: bool) -> None:
        out = self.out
        missing = []
        p = out
        while not p.exists():
            missing.append(p)
            p = p.parent
        out.mkdir(parents=True, exist_ok=True)
        self.created = missing  # deepest first
        for tmp in _stale_tmp(out):
            tmp.unlink(missing_ok=True)
        if resume:
            self.committed = True  # the old run is the run: nothing to put back
            return
        old = _own_files(out)
        if overwrite and old:
            self.aside = Path(tempfile.mkdtemp(prefix=ASIDE_PREFIX, dir=out))
            for rel in old:
                (self.aside / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(out / rel, self.aside / rel)
            (self.aside / ASIDE_COMPLETE).touch()

    def commit(self) -> None:
        """The new run has started well: delete the old run moved aside."""
        if self.committed:
            return
        self.committed = True
        if self.aside is not None:
            _discard(self.aside)
            self.aside = None

    def rollback(self) -> None:
        """Undo :meth:`prepare` (only before :meth:`commit`): the folder is as it was."""
        if self.committed:
            return
        self.committed = True
        out = self.out
        _remove_run(out)
        if self.aside is not None:
            _put_back(out, self.aside)
        for d in RUN_DIRS:  # folders the new run created and left empty
            if (out / d).is_dir() and not any((out / d).iterdir()):
                (out / d).rmdir()
        for p in self.created:  # deepest first
            try:
                p.rmdir()
            except OSError:
                break


def _remove_run(out: Path) -> None:
    """Delete the run's own files in ``out`` and its stale temporary files."""
    for rel in _own_files(out):
        (out / rel).unlink(missing_ok=True)
    for tmp in _stale_tmp(out):
        tmp.unlink(missing_ok=True)


def _put_back(out: Path, aside: Path) -> None:
    """Move the old run's files from ``aside`` back into ``out`` and remove ``aside``.

    The marker goes first: a process killed in the middle leaves a folder without it, which
    :func:`recover` completes the same way."""
    (aside / ASIDE_COMPLETE).unlink(missing_ok=True)
    for p in sorted(aside.rglob("*")):
        if p.is_file():
            dest = out / p.relative_to(aside)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
    shutil.rmtree(aside, ignore_errors=True)


def _discard(aside: Path) -> None:
    """Delete the old run moved aside, its marker last (a folder left without the marker by a
    killed process holds no file that :func:`recover` could put back)."""
    marker = aside / ASIDE_COMPLETE
    for p in aside.rglob("*"):
        if p.is_file() and p != marker:
            p.unlink(missing_ok=True)
    marker.unlink(missing_ok=True)
    shutil.rmtree(aside, ignore_errors=True)


def recover(out: Path) -> list[str]:
    """Finish an ``overwrite=True`` that a killed process (``kill -9``) left half done, so
    that ``out`` holds one run again; returns what was done, one message per hidden folder.

    - The old run was moved aside completely (the folder holds :data:`ASIDE_COMPLETE`) and the
      new run wrote ``checkpoints/last.pt``: the new run won; the old run is deleted.
    - It was moved aside completely and the new run wrote no checkpoint: the new run's own
      files are deleted and the old run is put back.
    - It was moved aside only partly (killed while moving, or while putting it back): no file
      of the new run exists yet; the rest of the old run is put back.
    """
    if not out.is_dir():
        return []
    notes = []
    for aside in sorted(p for p in out.glob(ASIDE_PREFIX + "*") if p.is_dir()):
        marker = aside / ASIDE_COMPLETE
        old = [p.relative_to(aside) for p in aside.rglob("*") if p.is_file() and p != marker]
        complete = marker.exists() or any((out / rel).exists() for rel in old)
        what = f"out_dir: {out}: a replacement of the run there (overwrite) was interrupted"
        if not old:
            _discard(aside)  # nothing of the old run left to put back
        elif complete and (out / "checkpoints" / "last.pt").is_file():
            _discard(aside)
            notes.append(
                f"{what} after the new run's first checkpoint; the new run is kept and the "
                f"previous run left in {aside.name} was deleted"
            )
        else:
            if complete:
                _remove_run(out)  # the interrupted new run's own files
            _put_back(out, aside)
            notes.append(
                f"{what} before the new run's first checkpoint; the previous run was put back "
                f"from {aside.name}"
            )
    return notes


def prepare_dir(out: Path, resume: bool, overwrite: bool) -> RunFolder:
    """Check ``out`` (:func:`check_dir`) and prepare it (:meth:`RunFolder.prepare`)."""
    check_dir(out, resume, overwrite)
    folder = RunFolder(out)
    folder.prepare(resume, overwrite)
    return folder


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
        "ranking": ranking_info(getattr(t.dataset, "schema", None)),
    }


def ranking_info(schema: Any) -> dict[str, Any]:
    """What the ranking metrics of the summary refer to: ``group`` (the column whose groups
    GAUC averages over, or null) and ``funnel`` (``[click task, conversion task]`` of the CVR
    AUC on clicked rows, or null)."""
    key = getattr(schema, "group_key", None)
    extra = getattr(schema, "extra", None) or {}
    funnel = getattr(schema, "funnel", None)
    return {
        "group": extra.get("group_column", key) if key is not None else None,
        "funnel": list(funnel) if funnel is not None else None,
    }
