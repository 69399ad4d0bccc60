"""Datasets whose splits are numpy arrays in memory (synthetic-ranking, census-income,
multi-digits): a subclass provides :meth:`InMemoryDataset.arrays`; row counts and seeded,
reproducible batches come from here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mtopt.data._util import array_batches, epoch_rng
from mtopt.data.base import MTDataset


class InMemoryDataset(MTDataset):
    """An :class:`~mtopt.data.base.MTDataset` over the in-memory arrays of each split."""

    #: keys of ``arrays(split)`` that go into a batch, in this order (None: every key)
    batch_keys: tuple[str, ...] | None = None

    def arrays(self, split: str) -> dict[str, Any]:
        """The arrays of ``split`` (``cat``, ``dense``, ``labels``, ...)."""
        raise NotImplementedError

    def num_rows(self, split: str) -> int | None:
        return len(self.arrays(split)["labels"])

    def batches(
        self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0, epoch: int = 0
    ) -> Iterator[dict]:
        """Batches of ``split``; with ``shuffle`` the order is a permutation seeded by
        ``(seed, epoch, split)`` — the same arguments always give the same batches."""
        arrays = self.arrays(split)
        if self.batch_keys is not None:
            arrays = {k: arrays[k] for k in self.batch_keys}
        rng = epoch_rng(seed, epoch, split) if shuffle else None
        return array_batches(arrays, batch_size, shuffle=shuffle, rng=rng)
