"""The per-step and per-evaluation logs of a run: ``steps.csv``, ``metrics.csv`` and the
optional TensorBoard scalars (a mixin of :class:`~mtopt.train.trainer.Trainer`; rank 0 writes,
the other ranks hold :class:`_NullLog` stand-ins)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mtopt.train.logs import CsvLog, TensorBoardLog


class _NullLog:
    """Stands in for :class:`CsvLog` on ranks other than 0 (they write no files)."""

    def open(self, resume_step: int | None = None) -> None:
        pass

    def write(self, row: dict[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class StepLogging:
    """Trainer methods that open the logs and write one step's row."""

    recipe: Any
    dist: Any
    out: Path
    tasks: list[str]
    step: int
    epoch: int
    accum: Any
    alpha: list[Any]
    status_counts: dict[str, int]
    dataset: Any

    def _open_logs(self, resume_step: int | None) -> None:
        """Open ``steps.csv`` / ``metrics.csv`` (cut back to ``resume_step`` when resuming) and
        TensorBoard."""
        r, tasks, main = self.recipe, self.tasks, self.dist.is_main
        step_cols = ["step", "epoch", "loss"]
        step_cols += [f"loss_{t}" for t in tasks] + [f"weight_{t}" for t in tasks]
        step_cols += ["solver_status", "solve_seconds", "extra"]
        metric_cols = ["step", "epoch", "train_loss"] + [f"train_loss_{t}" for t in tasks]
        metric_cols += [f"val_auc_{t}" for t in tasks] + ["val_auc_avg"]
        metric_cols += [f"val_logloss_{t}" for t in tasks] + ["best"]
        metric_cols += [f"test_auc_{t}" for t in tasks] + ["test_auc_avg", "seconds"]
        metric_cols += ranking_columns(getattr(self.dataset, "schema", None), tasks)
        self.steps_log: Any = CsvLog(self.out / "steps.csv", step_cols) if main else _NullLog()
        self.metrics_log: Any = (
            CsvLog(self.out / "metrics.csv", metric_cols) if main else _NullLog()
        )
        self.steps_log.open(resume_step)
        self.metrics_log.open(resume_step)
        self.tb = (
            TensorBoardLog(self.out / "tensorboard", purge_step=resume_step)
            if r.output.tensorboard and main
            else None
        )

    def _log_step(self, info: Any) -> None:
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch + 1,
            "loss": info.loss,
            "solver_status": info.solver_status,
            "solve_seconds": info.solve_seconds,
        }
        for t, x in zip(self.tasks, info.task_losses):
            row[f"loss_{t}"] = x
        self.accum.add(info.loss, list(info.task_losses))
        has_w = info.weights is not None
        if has_w:
            for i, (t, w) in enumerate(zip(self.tasks, info.weights)):
                row[f"weight_{t}"] = float(w)
                if math.isfinite(float(w)):
                    self.alpha[i].add(float(w))
        if info.solver_status is not None:
            self.status_counts[info.solver_status] = (
                self.status_counts.get(info.solver_status, 0) + 1
            )
        extra = {
            k: float(v)
            for k, v in (info.extra or {}).items()
            if isinstance(v, (int, float)) and math.isfinite(float(v))
        }
        # method-specific numbers (PUB diagnostics: cosines, Diff, residual; DRGrad's mu; …)
        row["extra"] = json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else None
        self.steps_log.write(row)
        if self.tb is not None:
            vals = {"train/loss": info.loss}
            vals.update({f"train/loss_{t}": x for t, x in zip(self.tasks, info.task_losses)})
            if has_w:
                vals.update({f"weight/{t}": float(w) for t, w in zip(self.tasks, info.weights)})
            self.tb.scalars(self.step, vals)


def ranking_columns(schema: Any, tasks: list[str]) -> list[str]:
    """The ranking columns of ``metrics.csv`` (after ``seconds``): ``val_ne_<task>``, with a
    group column ``val_gauc_<task>`` and ``val_gauc_avg``, with a click → conversion funnel
    ``val_cvr_auc``."""
    cols = [f"val_ne_{t}" for t in tasks]
    if getattr(schema, "group_key", None) is not None:
        cols += [f"val_gauc_{t}" for t in tasks] + ["val_gauc_avg"]
    if getattr(schema, "funnel", None) is not None:
        cols.append("val_cvr_auc")
    return cols
