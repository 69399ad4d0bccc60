"""Data sharding: each rank's contiguous slice of the same global batch (see
:mod:`mtopt.distributed`)."""

from __future__ import annotations

from typing import Any

import torch


def shard_batch(batch: dict[str, Any], rank: int, world_size: int) -> dict[str, Any] | None:
    """Rank ``rank``'s contiguous slice of a global batch (``None``: fewer rows than ranks)."""
    rows = int(batch["labels"].shape[0])
    if world_size == 1:
        return batch
    if rows < world_size:
        return None
    bounds = [rows * r // world_size for r in range(world_size + 1)]
    lo, hi = bounds[rank], bounds[rank + 1]
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == rows:
            out[k] = v[lo:hi]
        else:
            out[k] = v
    return out
