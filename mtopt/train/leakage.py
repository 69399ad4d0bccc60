"""The leakage guard: a feature that equals, encodes or almost perfectly separates a label.

A label left among the features (a ``click`` copied into a numerical column, a categorical id
that is the conversion flag) gives a test AUC near 1.0 that means nothing — a classic trap with
the public ranking datasets. Before anything is written, the trainer looks at a sample of the
training split (its first :data:`SAMPLE_ROWS` rows, unshuffled: cheap even for a streamed file)
and raises an :class:`~mtopt.errors.InputError` naming the column, the task and the option that
allows it (``data.allow_leakage: true`` or a list of column names).

A column is flagged for a task when, on the sampled rows with both classes present,

- it **encodes** the label: one value on every positive row and another on every negative row
  (a copy, or a recoding, of the label; dense and categorical columns);
- a **dense** column *separates* it: the AUC of the column's values as a score, or of their
  negation, is at least :data:`SEPARATION` (with at least :data:`MIN_CLASS` rows of each class);
- a **categorical** column separates it: the AUC of the leave-one-out positive rate of each
  row's value (the rate among the *other* sampled rows with that value; the overall rate for a
  value seen once) is at least :data:`SEPARATION` (same class counts) — a value that
  determines the label.

Columns are named as the dataset names them (``numerical_7``, ``categorical_3`` for
``aliexpress``), else ``dense_<j>`` / ``cat_<j>`` (0-based, the column of ``batch["dense"]`` /
``batch["cat"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mtopt.errors import InputError

#: rows of the training split looked at (its first rows)
SAMPLE_ROWS = 20_000
#: AUC (of a dense column, or of a categorical column's leave-one-out rate) that flags a column
SEPARATION = 0.999
#: rows of each class a separation test needs (fewer: only the encoding test applies)
MIN_CLASS = 20
#: the recipe field that allows flagged columns
OPTION = "data.allow_leakage"


@dataclass
class Leak:
    """A flagged column: its name, the task and what was found (a phrase)."""

    column: str
    task: str
    finding: str


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(score)  # mid-ranks: ties count one half
    pos = float(y.sum())
    neg = y.size - pos
    return float((r[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _encodes(x: np.ndarray, y: np.ndarray) -> bool:
    a, b = x[y == 1], x[y == 0]
    return bool(a.min() == a.max() and b.min() == b.max() and a[0] != b[0])


def _loo_rate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row: the positive rate of the other rows with the same value (overall rate if
    none)."""
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    pos = np.bincount(inv, weights=y)
    n_other = counts[inv] - 1.0
    other_pos = pos[inv] - y
    out = np.full(y.size, float(y.mean()))
    np.divide(other_pos, n_other, out=out, where=n_other > 0)
    return out


def find_leaks(
    cat: np.ndarray,
    dense: np.ndarray,
    labels: np.ndarray,
    task_names: list[str],
    cat_names: list[str],
    dense_names: list[str],
) -> list[Leak]:
    """Every (column, task) flagged on these rows (see the module docstring)."""
    leaks: list[Leak] = []
    n = labels.shape[0]
    for i, task in enumerate(task_names):
        y = labels[:, i].astype(np.float64)
        pos = int(y.sum())
        if pos == 0 or pos == n:
            continue
        enough = min(pos, n - pos) >= MIN_CLASS
        for j, name in enumerate(dense_names):
            x = dense[:, j].astype(np.float64)
            if _encodes(x, y):
                leaks.append(Leak(name, task, "encodes the label (one value per class)"))
            elif enough:
                a = _auc(x, y)
                if max(a, 1.0 - a) >= SEPARATION:
                    leaks.append(Leak(name, task, f"separates the label (AUC {max(a, 1 - a):.4f})"))
        for j, name in enumerate(cat_names):
            x = cat[:, j]
            if _encodes(x, y):
                leaks.append(Leak(name, task, "encodes the label (one id per class)"))
            elif enough:
                a = _auc(_loo_rate(x, y), y)
                if a >= SEPARATION:
                    leaks.append(
                        Leak(name, task, f"determines the label by its value (AUC {a:.4f})")
                    )
    return leaks


def column_names(dataset: Any) -> tuple[list[str], list[str]]:
    """(categorical names, dense names) of a dataset's batch columns."""
    schema = dataset.schema
    n_cat, n_dense = len(schema.cat_cardinalities), int(schema.n_dense)
    cat = list(getattr(dataset, "cat_cols", None) or [])
    dense = list(getattr(dataset, "num_cols", None) or [])
    if len(cat) != n_cat:
        cat = [f"cat_{j}" for j in range(n_cat)]
    if len(dense) != n_dense:
        dense = [f"dense_{j}" for j in range(n_dense)]
    return cat, dense


def allowed(value: Any, names: list[str], source: str) -> bool | set[str]:
    """``data.allow_leakage`` checked: ``True``, ``False`` or a set of known column names."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(
            f"{source}: {OPTION}: true, false or a list of column names, got {value!r}"
        )
    unknown = [v for v in value if v not in names]
    if unknown:
        raise InputError(
            f"{source}: {OPTION}: unknown column(s) {', '.join(unknown)} (columns: "
            f"{', '.join(names)})"
        )
    return set(value)


def check_leakage(dataset: Any, allow: Any = False, source: str = "recipe") -> None:
    """Raise an :class:`InputError` for the first flagged column not allowed by ``allow``
    (the value of ``data.allow_leakage``), looking at the first :data:`SAMPLE_ROWS` training
    rows of ``dataset``."""
    cat_names, dense_names = column_names(dataset)
    ok = allowed(allow, cat_names + dense_names, source)
    if ok is True or not (cat_names or dense_names):
        return
    batch = next(iter(dataset.batches("train", SAMPLE_ROWS)), None)
    if batch is None:
        return
    labels = batch["labels"].numpy()
    empty = np.zeros((labels.shape[0], 0))
    leaks = find_leaks(
        batch["cat"].numpy() if "cat" in batch else empty,
        batch["dense"].numpy() if "dense" in batch else empty,
        labels,
        list(dataset.schema.task_names),
        cat_names,
        dense_names,
    )
    leaks = [k for k in leaks if not (isinstance(ok, set) and k.column in ok)]
    if not leaks:
        return
    k = leaks[0]
    kind = "categorical" if k.column in cat_names else "dense"
    more = f" ({len(leaks) - 1} more flagged)" if len(leaks) > 1 else ""
    rows = int(batch["labels"].shape[0])
    raise InputError(
        f"{source}: {OPTION}: {kind} column {k.column} {k.finding} of task {k.task!r} on the "
        f"first {rows} training rows — a label left in the features?{more}; drop the column, "
        f"or set {OPTION}: [{k.column}] (or true) if it is intended"
    )
