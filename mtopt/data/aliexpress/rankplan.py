"""How ``data.shard: rank`` deals a split's blocks out to the processes, from the block sizes and
the validation hash alone (no data read): a mixin of
:class:`~mtopt.data.aliexpress.dataset.AliExpress` (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mtopt.data._util import check_batch_size, epoch_rng
from mtopt.data.aliexpress.index import CsvFile
from mtopt.errors import InputError


class RankPlanning:
    """Dataset methods of the per-process shares."""

    files: dict[str, CsvFile]
    _kept: dict[tuple[str, bool | None], np.ndarray]
    _mask: Callable[[int, int, bool | None], np.ndarray | None]
    _source: Callable[[str], tuple[str, bool | None]]

    def _piece_rows(self, key: str, keep_val: bool | None, piece: tuple[int, int, int]) -> int:
        """Rows of the split in ``piece = (block, lo, hi)`` (from row indices; no data read)."""
        b, lo, hi = piece
        f = self.files[key]
        if keep_val is None:
            return hi - lo
        if (lo, hi) == (0, f.block_rows(b)):
            cached = self._kept.get((key, keep_val))
            if cached is None:
                cached = np.array(
                    [
                        int(self._mask(i * f.chunk_rows, f.block_rows(i), keep_val).sum())
                        for i in range(f.n_blocks)
                    ],
                    dtype=np.int64,
                )
                self._kept[(key, keep_val)] = cached
            return int(cached[b])
        return int(self._mask(b * f.chunk_rows + lo, hi - lo, keep_val).sum())

    def _deal(self, key: str, order: Sequence[int], world_size: int) -> list[list[tuple]]:
        """Each process's pieces ``(block, lo, hi)`` of the blocks in ``order``.

        The full blocks are dealt round-robin in ``order`` (the ``i``-th to process ``i mod W``)
        as long as every process gets one per round; the full blocks of the last, incomplete
        round and the file's short last block are each split into ``W`` contiguous row ranges,
        one per process, so that the processes' row counts differ by at most one row per split
        block (before the validation rows are taken out).
        """
        f = self.files[key]
        if world_size == 1:
            return [[(int(b), 0, f.block_rows(int(b))) for b in order]]
        last = f.n_blocks - 1
        short = last if f.n_blocks and f.block_rows(last) < f.chunk_rows else None
        whole = [int(b) for b in order if int(b) != short]
        dealt = len(whole) - len(whole) % world_size
        shares: list[list[tuple]] = [
            [(b, 0, f.chunk_rows) for b in whole[r:dealt:world_size]] for r in range(world_size)
        ]
        for b in whole[dealt:] + ([short] if short is not None else []):
            n = f.block_rows(b)
            for r in range(world_size):
                lo, hi = n * r // world_size, n * (r + 1) // world_size
                if hi > lo:
                    shares[r].append((b, lo, hi))
        return shares

    def _block_order(
        self, split: str, n_blocks: int, shuffle: bool, seed: int, epoch: int
    ) -> tuple[Sequence[int], np.random.Generator | None]:
        rng = epoch_rng(seed, epoch, split) if shuffle else None
        order = rng.permutation(n_blocks) if rng is not None else range(n_blocks)
        return order, rng

    def _plan(
        self,
        split: str,
        key: str,
        keep_val: bool | None,
        order: Sequence[int],
        batch_size: int,
        world_size: int,
    ) -> dict[str, Any]:
        shares = self._deal(key, order, world_size)
        rows = [sum(self._piece_rows(key, keep_val, p) for p in share) for share in shares]
        batches = min(-(-r // batch_size) for r in rows)
        if world_size > 1 and min(rows) == 0:
            raise InputError(
                f"data.shard: rank: split {split!r} of {self.files[key].path} has "
                f"{sum(rows)} rows, too few to give each of {world_size} processes a row; use "
                "data.shard: global"
            )
        dropped = [max(0, r - batches * batch_size) for r in rows]
        return {"pieces": shares, "rows": rows, "batches": batches, "dropped": dropped}

    def rank_plan(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        world_size: int = 1,
    ) -> dict[str, Any]:
        """How ``batches(..., rank=r, world_size=W)`` shares ``split`` out, computed from the
        block sizes and the validation hash alone (no data is read).

        Returns ``pieces`` (per process, its ``(block, first row, end row)`` ranges in reading
        order), ``rows`` (per process, its rows of the split), ``batches`` (the number of local
        batches of ``batch_size`` every process yields: ``min_r ⌈rows_r / batch_size⌉``) and
        ``dropped`` (per process, ``max(0, rows_r − batches·batch_size)``: the rows its stream
        would have put last, not yielded this epoch).
        """
        check_batch_size(batch_size)
        _check_rank(0, world_size)
        key, keep_val = self._source(split)
        order, _ = self._block_order(split, self.files[key].n_blocks, shuffle, seed, epoch)
        return self._plan(split, key, keep_val, order, batch_size, world_size)


def _check_rank(rank: int, world_size: int) -> None:
    if int(world_size) != world_size or world_size < 1:
        raise InputError(f"world_size must be a positive integer, got {world_size!r}")
    if int(rank) != rank or not 0 <= rank < world_size:
        raise InputError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
