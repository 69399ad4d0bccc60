"""Input checks shared by the methods and the pure aggregators: task losses, hyperparameters.

Errors name the library parameter (``method.<name>``, ``losses``), never a command-line flag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import torch

from mtopt.errors import InputError, RunError


@overload
def check_losses(
    losses: Sequence[torch.Tensor], n: int, name: str = ..., *, values: Literal[False] = ...
) -> list[torch.Tensor]: ...
@overload
def check_losses(losses: Any, n: int, name: str = ..., *, values: Literal[True]) -> np.ndarray: ...
def check_losses(
    losses: Any, n: int, name: str = "method.step", *, values: bool = False
) -> list[torch.Tensor] | np.ndarray:
    """Validate ``n`` task losses (the one loss check of :mod:`mtopt.methods`).

    ``values=False`` (a method's ``step``): ``losses`` must be ``n`` scalar tensors; returns them
    as 0-d tensors (still in the graph). A non-finite loss is a :class:`RunError` (the run
    diverged), anything else an :class:`InputError` naming ``name``.

    ``values=True`` (an aggregator's ``losses=`` argument): scalar tensors or plain numbers;
    returns their values as a float64 vector. ``None``, a wrong count or a non-finite value is an
    :class:`InputError` naming ``name``.
    """
    if values:
        if losses is None:
            raise InputError(f"{name}: this normalization needs losses=[...] (one value per task)")
        arr = np.asarray(
            [float(x.detach()) if isinstance(x, torch.Tensor) else float(x) for x in losses],
            dtype=np.float64,
        )
        if arr.shape != (n,) or not np.all(np.isfinite(arr)):
            raise InputError(f"{name}: losses must be {n} finite numbers, got {arr.tolist()}")
        return arr
    out = list(losses)
    if len(out) != n:
        raise InputError(f"{name}: expected {n} task losses, got {len(out)}")
    for i, loss in enumerate(out):
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise InputError(f"{name}: task loss {i} must be a scalar tensor")
        v = float(loss.detach())
        if not math.isfinite(v):
            raise RunError(f"task {i} loss is {v} (non-finite); lower the learning rate")
    return [loss.reshape(()) for loss in out]


def positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """``float(value)``, which must be finite and > 0 (or ≥ 0); else an :class:`InputError`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"method.{name}: must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise InputError(f"method.{name}: must be finite and {bound}, got {value!r}")
    return v


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the method's own RNG)."""
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise InputError(f"method.seed: must be an integer, got {seed!r}") from None
    return torch.Generator().manual_seed(s)


__all__ = ["check_losses", "make_generator", "positive"]
