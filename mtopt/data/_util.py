"""Small helpers shared by the built-in datasets (numpy only; torch is imported lazily)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from mtopt.data.base import SPLITS
from mtopt.errors import InputError

_SPLIT_ID = {name: i for i, name in enumerate(SPLITS)}


def check_split_name(split: str) -> int:
    """Index of ``split`` in :data:`SPLITS`; :class:`InputError` for anything else."""
    if split not in _SPLIT_ID:
        raise InputError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    return _SPLIT_ID[split]


def check_options(dataset: str, given: Mapping[str, Any], known: Iterable[str]) -> None:
    """Reject unknown ``data.*`` options with a message naming the field and the known ones."""
    known = sorted(known)
    for key in given:
        if key not in known:
            raise InputError(
                f"data.{key}: unknown option for dataset {dataset!r} (known: {', '.join(known)})"
            )


def check_batch_size(batch_size: int) -> None:
    if int(batch_size) != batch_size or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")


def dense_problem(dense: np.ndarray) -> tuple[int, int, str] | None:
    """The first dense value the model cannot hold, as ``(row, column, problem)``, or ``None``.

    Values must be finite and fit in float32, the model's dtype (``|x| <= 3.4e38``). The caller
    names the file, the line and the column (:class:`InputError`).
    """
    bad = ~np.isfinite(dense)
    problem = "NaN or infinite value (impute or drop it)"
    if not bad.any():
        bad = np.abs(dense) > np.finfo(np.float32).max  # the model computes in float32
        problem = "value overflows float32 (|x| > 3.4e38); rescale the column"
        if not bad.any():
            return None
    r, c = np.argwhere(bad)[0]
    return int(r), int(c), problem


def unit_hash(index: np.ndarray, seed: int) -> np.ndarray:
    """A seeded hash of integer row indices to floats uniform in ``[0, 1)`` (splitmix64).

    Used to carve a validation split out of a file by row index: the assignment of a row does
    not depend on the chunk size or on the order in which rows are read.
    """
    x = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64((int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def epoch_rng(seed: int, epoch: int, split: str, salt: int = 0) -> np.random.Generator:
    """The generator that orders ``split`` in ``epoch`` (independent streams per argument)."""
    return np.random.default_rng([int(seed), int(epoch), check_split_name(split), int(salt)])


def make_batch(
    cat: np.ndarray,
    dense: np.ndarray,
    labels: np.ndarray,
    user: np.ndarray | None = None,
    group: np.ndarray | None = None,
) -> dict:
    """The batch dict of :mod:`mtopt.data.base` from numpy arrays (copied into new tensors)."""
    import torch

    batch = {
        "cat": torch.from_numpy(np.ascontiguousarray(cat, dtype=np.int64)),
        "dense": torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)),
        "labels": torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32)),
    }
    if user is not None:
        batch["user"] = torch.from_numpy(np.ascontiguousarray(user, dtype=np.int64))
    if group is not None:
        batch["group"] = torch.from_numpy(np.ascontiguousarray(group, dtype=np.int64))
    return batch


def array_batches(
    arrays: Mapping[str, np.ndarray | None],
    batch_size: int,
    *,
    shuffle: bool,
    rng: np.random.Generator | None,
) -> Iterator[dict]:
    """Batches of in-memory arrays ``cat``, ``dense``, ``labels`` (and optional ``user``).

    The last batch may be smaller; nothing is dropped. With ``shuffle`` the row order is a
    permutation drawn from ``rng``.
    """
    check_batch_size(batch_size)
    n = len(arrays["labels"])
    order = rng.permutation(n) if shuffle and rng is not None else None
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        idx = order[sl] if order is not None else sl
        user = arrays.get("user")
        yield make_batch(
            arrays["cat"][idx],
            arrays["dense"][idx],
            arrays["labels"][idx],
            None if user is None else user[idx],
        )


def binary_entropy(p: float) -> float:
    """Mean BCE (nats) of the constant predictor ``p`` on labels with base rate ``p``."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return float(-p * np.log(p) - (1.0 - p) * np.log1p(-p))
