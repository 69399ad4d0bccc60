"""``data.shard: rank``: whether each process reads its own local batches, and the per-step
agreement of the processes on the global batch size (a mixin of
:class:`~mtopt.train.trainer.Trainer`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from mtopt.errors import InputError


class RankSharding:
    """Trainer methods of ``data.shard: rank`` (they use the trainer's recipe, dist, dataset)."""

    recipe: Any
    dist: Any
    dataset: Any
    source: str
    device: Any
    epoch: int

    _note: Callable[[str], None]

    def _rank_shard(self) -> bool:
        """Whether each process reads its own local batches (``data.shard: rank``)."""
        r, dist = self.recipe, self.dist
        if r.data.shard != "rank" or not dist.enabled:
            return False  # one process: the global stream is the process's stream
        if not self.dataset.supports_rank_shard:
            self._note(
                f"data.shard: rank: dataset {r.data.name!r} has no per-process reader; every "
                "process reads the global batches and keeps its slice (as with shard: global)"
            )
            return False
        bs, w = r.optimizer.batch_size, dist.world_size
        if bs % w:
            raise InputError(
                f"{self.source}: optimizer.batch_size: {bs} is not divisible by the {w} "
                f"processes; data.shard: rank reads local batches of batch_size / {w} rows "
                f"(use a multiple of {w}, or data.shard: global)"
            )
        return True

    def _agree(self, batch: dict[str, Any] | None) -> tuple[dict[str, Any] | None, int]:
        """``data.shard: rank``: (this process's batch, the global batch's rows), or
        ``(None, 0)`` when any process's stream has ended — one all-reduce of (local rows,
        ended) per step, so every process stops at the same step."""
        n = 0 if batch is None else int(batch["labels"].shape[0])
        t = torch.tensor([n, int(n == 0)], dtype=torch.int64, device=self.device)
        self.dist.all_reduce_sum_(t)
        total, ended = (int(v) for v in t.tolist())
        if ended:
            if ended < self.dist.world_size:
                self._note(
                    f"data.shard: rank: dataset {self.recipe.data.name!r} gave the processes "
                    f"different numbers of batches in epoch {self.epoch + 1}; every process "
                    "stopped with the shortest stream (the others' remaining rows were skipped)"
                )
            return None, 0
        return batch, total
