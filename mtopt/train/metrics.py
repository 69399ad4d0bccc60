"""Evaluation metrics: per-task ROC AUC (scikit-learn), log-loss, normalized entropy, group AUC
and the CVR AUC on clicked rows (:mod:`mtopt.train.ranking`), and running statistics.

A task whose labels in a split have a single class has no defined AUC: it is reported as
``None`` (JSON ``null``) with a warning — never a crash and never 0.5. The average AUC is the
mean over the tasks whose AUC is defined (``None`` if none is); ``auc_avg_tasks`` lists them.
GAUC is ``None`` for every task when the dataset declares no group (``schema.group_key``); the
CVR AUC when it declares no click → conversion funnel (``schema.funnel``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mtopt.errors import RunError
from mtopt.train.ranking import cvr_scores, gauc, normalized_entropy

#: probabilities are clipped to [EPS, 1 - EPS] for the log-loss
LOGLOSS_EPS = 1e-7


class SingleClassWarning(UserWarning):
    """A task has a single class in a split: its AUC is undefined (reported as null)."""


def task_auc(labels: np.ndarray, scores: np.ndarray, *, where: str = "") -> float | None:
    """ROC AUC of ``scores`` for binary ``labels``; ``None`` + a warning for a single class."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if labels.size == 0:
        warnings.warn(
            f"{where}: no rows; AUC is undefined (null)", SingleClassWarning, stacklevel=2
        )
        return None
    classes = np.unique(labels)
    if classes.size < 2:
        warnings.warn(
            f"{where}: all {labels.size} labels are {classes[0]:g}; AUC is undefined and "
            "reported as null",
            SingleClassWarning,
            stacklevel=2,
        )
        return None
    return float(roc_auc_score(labels, scores))


def mean_or_none(values: list[float | None]) -> float | None:
    """Mean of the non-None values (None if there are none)."""
    vals = [v for v in values if v is not None]
    return float(sum(vals) / len(vals)) if vals else None


@dataclass
class EvalResult:
    """AUC, log-loss, NE and GAUC per task on one split, and the CVR AUC on clicked rows.

    ``gauc_groups`` is ``None`` without a group column, else per task ``{"used", "skipped"}``
    (groups with a single class are skipped); ``cvr_auc`` / ``cvr_rows`` are ``None`` without
    a click → conversion funnel (``cvr_rows``: the clicked rows).
    """

    split: str
    auc: dict[str, float | None]
    logloss: dict[str, float | None]
    rows: int
    ne: dict[str, float | None] = field(default_factory=dict)
    gauc: dict[str, float | None] = field(default_factory=dict)
    gauc_groups: dict[str, dict[str, int]] | None = None
    cvr_auc: float | None = None
    cvr_rows: int | None = None

    @property
    def auc_avg(self) -> float | None:
        return mean_or_none(list(self.auc.values()))

    @property
    def gauc_avg(self) -> float | None:
        return mean_or_none(list(self.gauc.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": dict(self.auc),
            "auc_avg": self.auc_avg,
            "auc_avg_tasks": [t for t, v in self.auc.items() if v is not None],
            "logloss": dict(self.logloss),
            "ne": dict(self.ne),
            "gauc": dict(self.gauc),
            "gauc_avg": self.gauc_avg,
            "gauc_groups": None if self.gauc_groups is None else dict(self.gauc_groups),
            "cvr_auc": self.cvr_auc,
            "cvr_rows": self.cvr_rows,
            "rows": self.rows,
        }


def _logloss(y: np.ndarray, p: np.ndarray) -> float | None:
    if y.size == 0:
        return None
    q = np.clip(p.astype(np.float64), LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def to_device(batch: dict[str, Any], device: str | torch.device) -> dict[str, Any]:
    """Move the tensors of a batch dict to ``device`` (other values pass through)."""
    if str(device) == "cpu":
        return batch
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


@torch.no_grad()
def evaluate(
    model: Any,
    dataset: Any,
    split: str,
    batch_size: int,
    device: str | torch.device = "cpu",
    max_batches: int | None = None,
) -> EvalResult:
    """Per-task AUC, log-loss, NE and GAUC of ``model.probabilities`` on ``split`` of
    ``dataset``, and the CVR AUC on clicked rows (see the module docstring)."""
    schema = getattr(dataset, "schema", None)
    group_key = getattr(schema, "group_key", None)
    funnel = getattr(schema, "funnel", None)
    was_training = model.training
    model.eval()
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    try:
        for i, batch in enumerate(dataset.batches(split, batch_size, shuffle=False)):
            if max_batches is not None and i >= max_batches:
                break
            b = to_device(batch, device)
            p = model.probabilities(b)
            probs.append(p.detach().to("cpu", torch.float64).numpy())
            labels.append(batch["labels"].to(torch.float64).numpy())
            if group_key is not None:
                groups.append(batch[group_key].numpy())
    finally:
        model.train(was_training)
    names = list(model.task_names)
    n = len(names)
    P = np.concatenate(probs) if probs else np.zeros((0, n))
    Y = np.concatenate(labels) if labels else np.zeros((0, n))
    if not np.all(np.isfinite(P)):
        raise RunError(
            f"{split}: the model predicts non-finite probabilities; training diverged "
            "(lower optimizer.lr or check the data)"
        )
    res = EvalResult(split=split, auc={}, logloss={}, rows=int(Y.shape[0]))
    G = np.concatenate(groups) if groups else np.zeros(0, np.int64)
    counts: dict[str, dict[str, int]] = {}
    for i, name in enumerate(names):
        res.auc[name] = task_auc(Y[:, i], P[:, i], where=f"{split} split, task {name!r}")
        res.logloss[name] = _logloss(Y[:, i], P[:, i])
        res.ne[name] = normalized_entropy(res.logloss[name], Y[:, i])
        res.gauc[name] = None
        if group_key is not None:
            g = gauc(Y[:, i], P[:, i], G)
            res.gauc[name], counts[name] = g.value, g.counts()
    res.gauc_groups = counts if group_key is not None else None
    if funnel is not None and funnel[0] in names and funnel[1] in names:
        c, v = names.index(funnel[0]), names.index(funnel[1])
        clicked = Y[:, c] == 1
        res.cvr_rows = int(clicked.sum())
        res.cvr_auc = task_auc(
            Y[clicked, v],
            cvr_scores(P[clicked, c], P[clicked, v]),
            where=f"{split} split, CVR AUC of {funnel[1]!r} on the rows with {funnel[0]} = 1",
        )
    return res


@dataclass
class RunningStats:
    """Count, sum, min and max of a stream of numbers (for α per task over steps)."""

    count: int = 0
    total: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        self.min = min(self.min, x)
        self.max = max(self.max, x)

    def summary(self) -> dict[str, float | None]:
        if self.count == 0:
            return {"mean": None, "min": None, "max": None}
        return {"mean": self.total / self.count, "min": self.min, "max": self.max}

    def state(self) -> list[float]:
        return [float(self.count), self.total, self.min, self.max]

    @classmethod
    def from_state(cls, s: list[float]) -> RunningStats:
        return cls(int(s[0]), float(s[1]), float(s[2]), float(s[3]))


@dataclass
class Accumulator:
    """Sums of the joint and per-task training losses since the last evaluation."""

    n_tasks: int
    count: int = 0
    loss: float = 0.0
    task: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.task:
            self.task = [0.0] * self.n_tasks

    def add(self, loss: float, task_losses: list[float]) -> None:
        self.count += 1
        self.loss += loss
        for i, x in enumerate(task_losses):
            self.task[i] += x

    def means(self) -> tuple[float | None, list[float | None]]:
        if self.count == 0:
            return None, [None] * self.n_tasks
        return self.loss / self.count, [t / self.count for t in self.task]

    def reset(self) -> None:
        self.count, self.loss, self.task = 0, 0.0, [0.0] * self.n_tasks

    def state(self) -> list[float]:
        return [float(self.count), self.loss, *self.task]

    def load(self, s: list[float]) -> None:
        self.count, self.loss, self.task = int(s[0]), float(s[1]), [float(x) for x in s[2:]]
