"""Checkpoints of a run: the resume state (``checkpoints/last.pt``) written and restored (a mixin
of :class:`~mtopt.train.trainer.Trainer`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mtopt.errors import InputError, RunError
from mtopt.train.checkpoint import get_rng_state, save_checkpoint, set_rng_state
from mtopt.train.metrics import RunningStats

CHECKPOINT_FORMAT = "mtopt-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointState:
    """Trainer methods that save and restore the resume point."""

    recipe: Any
    model: Any
    method: Any
    dist: Any
    tasks: list[str]
    warnings: list[str]
    step: int
    epoch: int
    batch_in_epoch: int
    seconds: float
    train_seconds: float
    eval_seconds: float
    _excluded: float
    samples: int
    last_eval_step: int
    best: dict[str, Any] | None
    last_val: dict[str, Any] | None
    accum: Any
    alpha: list[RunningStats]
    status_counts: dict[str, int]
    steps_log: Any
    metrics_log: Any
    ckpt_dir: Path
    _tick: Callable[[], None]
    folder: Any = None
    first_loss: float | None = None
    wrote_checkpoint: bool = False

    def _restore(self, ckpt: dict[str, Any], path: Path | str = "checkpoint") -> None:
        """Restore the resume point; a checkpoint that does not fit this run's model and
        method is an :class:`InputError` naming the file (nothing on disk has changed yet)."""
        try:
            self._restore_state(ckpt)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            if isinstance(exc, InputError):
                raise
            lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
            detail = " ".join(lines[1:] if len(lines) > 1 and lines[0].endswith(":") else lines)
            if isinstance(exc, KeyError):
                detail = f"missing entry {exc.args[0]!r}" if exc.args else "missing entry"
            detail = detail.replace("Error(s) in loading state_dict for ", "")
            if len(detail) > 160:
                detail = detail[:157] + "..."
            raise InputError(
                f"{path}: does not fit this run's model and method ({type(exc).__name__}: "
                f"{detail}); resume with the recipe the run was started with, or start a new "
                "run (without resuming, or with overwrite)"
            ) from None

    def _restore_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.method.load_state_dict(ckpt["method"])
        pos = ckpt["position"]
        self.step, self.epoch, self.batch_in_epoch = pos["step"], pos["epoch"], pos["batch"]
        t = ckpt["trainer"]
        self.seconds = float(t["seconds"])
        # checkpoints written before the split: all of it counted as training
        self.train_seconds = float(t.get("train_seconds", self.seconds))
        self.eval_seconds = float(t.get("eval_seconds", 0.0))
        self.samples = int(t["samples"])
        self.last_eval_step = int(t["last_eval_step"])
        self.best = t["best"]
        self.last_val = t["last_val"]
        self.accum.load(t["accum"])
        self.alpha = [RunningStats.from_state(s) for s in t["alpha"]]
        self.status_counts = dict(t["status_counts"])
        self.warnings = list(t.get("warnings", []))
        first = t.get("first_loss")  # checkpoints before 0.x: the first loss after resuming
        self.first_loss = None if first is None else float(first)
        set_rng_state(ckpt["rng"])

    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "recipe": self.recipe.to_dict(),
            "tasks": list(self.tasks),
            "model": self.model.state_dict(),
            "method": self.method.state_dict(),
            "rng": get_rng_state(),
            "position": {"step": self.step, "epoch": self.epoch, "batch": self.batch_in_epoch},
            "trainer": {
                "seconds": self.seconds,
                "train_seconds": self.train_seconds,
                "eval_seconds": self.eval_seconds,
                "samples": self.samples,
                "last_eval_step": self.last_eval_step,
                "best": self.best,
                "last_val": self.last_val,
                "accum": self.accum.state(),
                "alpha": [s.state() for s in self.alpha],
                "status_counts": dict(self.status_counts),
                "warnings": list(self.warnings),
                "first_loss": self.first_loss,
            },
        }

    def _checkpoint(self) -> None:
        t0 = time.perf_counter()
        self._tick()
        try:
            self._write_checkpoint()
        finally:
            self._excluded += time.perf_counter() - t0

    def _write_checkpoint(self) -> None:
        for name, p in self.model.named_parameters():
            if not bool(torch.isfinite(p.detach()).all()):
                raise RunError(
                    f"step {self.step}: parameter {name!r} became non-finite; training stopped; "
                    f"{self._kept()} (lower optimizer.lr or check the method)"
                )
        self.dist.check_identical(self.model)
        self.steps_log.flush()
        self.metrics_log.flush()
        if self.dist.is_main:  # parameters are identical on every rank
            save_checkpoint(self.ckpt_dir / "last.pt", self._state())
            self.wrote_checkpoint = True
            if self.folder is not None:
                self.folder.commit()  # the new run has started well: drop a replaced old run

    def _kept(self) -> str:
        """What a failed run leaves to resume from, said truthfully."""
        last = self.ckpt_dir / "last.pt"
        if last.is_file():
            return f"the last good checkpoint {last} was kept"
        return "no checkpoint was written yet (nothing to resume; start again)"
