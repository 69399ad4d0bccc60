"""Evaluation and best-model tracking of a run (a mixin of :class:`~mtopt.train.trainer.Trainer`).

Rank 0 evaluates the validation split; when the average validation AUC improves it evaluates
the test split too, writes ``checkpoints/best.pt`` and marks the ``metrics.csv`` row ``best``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtopt.train.checkpoint import save_checkpoint
from mtopt.train.metrics import EvalResult, evaluate


class Evaluation:
    """Trainer methods of the evaluations (they use the trainer's state and logs)."""

    recipe: Any
    model: Any
    dataset: Any
    device: Any
    dist: Any
    tasks: list[str]
    warnings: list[str]
    step: int
    epoch: int
    batch_in_epoch: int
    seconds: float
    eval_seconds: float
    _excluded: float
    last_eval_step: int
    best: dict[str, Any] | None
    last_val: dict[str, Any] | None
    accum: Any
    metrics_log: Any
    tb: Any
    ckpt_dir: Path
    _tick: Callable[[], None]

    def _eval_split(self, split: str) -> EvalResult:
        tr = self.recipe.train
        bs = tr.eval_batch_size or self.recipe.optimizer.batch_size
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = evaluate(self.model, self.dataset, split, bs, self.device)
        for w in caught:
            msg = str(w.message)
            if msg not in self.warnings:
                self.warnings.append(msg)
                warnings.warn(msg, w.category, stacklevel=2)
        return res

    def _evaluate(self) -> None:
        t0 = time.perf_counter()
        self._tick()
        try:
            self._evaluate_main()
        finally:
            dt = time.perf_counter() - t0
            self._excluded += dt
            self.eval_seconds += dt

    def _evaluate_main(self) -> None:
        if not self.dist.is_main:  # rank 0 evaluates the full splits (parameters are identical)
            self.last_eval_step = self.step
            return
        val = self._eval_split("val")
        self.last_eval_step = self.step
        cur = val.auc_avg
        best_val = None if self.best is None else self.best["val"]["auc_avg"]
        improved = self.best is None or (cur is not None and (best_val is None or cur > best_val))
        test: EvalResult | None = None
        if improved:
            test = self._eval_split("test")
            self.best = {
                "step": self.step,
                "epoch": self._eval_epoch(),
                "val": val.to_dict(),
                "test": test.to_dict(),
            }
            save_checkpoint(
                self.ckpt_dir / "best.pt",
                {
                    "format": "mtopt-best-model",
                    "recipe": self.recipe.to_dict(),
                    "tasks": list(self.tasks),
                    "model": self.model.state_dict(),
                    "step": self.step,
                    "epoch": self.best["epoch"],
                    "val": val.to_dict(),
                    "test": test.to_dict(),
                },
            )
        self.last_val = val.to_dict()
        train_loss, task_losses = self.accum.means()
        self.accum.reset()
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self._eval_epoch(),
            "train_loss": train_loss,
            "val_auc_avg": val.auc_avg,
            "best": int(improved),
            "seconds": round(self.seconds, 3),
        }
        for t, x in zip(self.tasks, task_losses):
            row[f"train_loss_{t}"] = x
        for t in self.tasks:
            row[f"val_auc_{t}"] = val.auc[t]
            row[f"val_logloss_{t}"] = val.logloss[t]
            row[f"val_ne_{t}"] = val.ne[t]
            row[f"val_gauc_{t}"] = val.gauc[t]
        row["val_gauc_avg"] = val.gauc_avg
        row["val_cvr_auc"] = val.cvr_auc
        if test is not None:
            for t in self.tasks:
                row[f"test_auc_{t}"] = test.auc[t]
            row["test_auc_avg"] = test.auc_avg
        self.metrics_log.write(row)
        if self.tb is not None:
            vals = eval_scalars("val", val)
            if test is not None:
                vals.update(eval_scalars("test", test))
            self.tb.scalars(self.step, vals)

    def _eval_epoch(self) -> int:
        """1-based epoch of an evaluation at the current position."""
        return self.epoch if self.batch_in_epoch == 0 and self.step > 0 else self.epoch + 1


def eval_scalars(prefix: str, res: EvalResult) -> dict[str, float | None]:
    """The TensorBoard scalars of one evaluation: ``{prefix}/auc_<task>``, ``auc_avg``,
    ``logloss_<task>``, ``ne_<task>``, and ``gauc_<task>`` / ``gauc_avg`` (with a group
    column) and ``cvr_auc`` (with a click → conversion funnel); undefined values are skipped
    by the writer."""
    vals: dict[str, float | None] = {f"{prefix}/auc_avg": res.auc_avg}
    for t in res.auc:
        vals[f"{prefix}/auc_{t}"] = res.auc[t]
        vals[f"{prefix}/logloss_{t}"] = res.logloss[t]
        vals[f"{prefix}/ne_{t}"] = res.ne.get(t)
        if res.gauc_groups is not None:
            vals[f"{prefix}/gauc_{t}"] = res.gauc.get(t)
    if res.gauc_groups is not None:
        vals[f"{prefix}/gauc_avg"] = res.gauc_avg
    if res.cvr_rows is not None:
        vals[f"{prefix}/cvr_auc"] = res.cvr_auc
    return vals
