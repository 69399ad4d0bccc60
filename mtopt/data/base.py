"""The dataset contract shared by every registered dataset.

A batch is a ``dict`` of CPU tensors:

- ``"cat"``: ``LongTensor[B, C]`` categorical ids, field j in ``[0, schema.cat_cardinalities[j])``
  (C may be 0);
- ``"dense"``: ``FloatTensor[B, F]`` float32 dense features (F may be 0);
- ``"labels"``: ``FloatTensor[B, n_tasks]`` in {0, 1};
- ``"user"`` (optional): ``LongTensor[B]`` user ids in ``[0, schema.n_users)`` for personalised
  methods (DRGrad's PPNet gate).

Datasets are iterables of batches, seeded and reproducible: ``batches(split, batch_size,
shuffle, seed, epoch)`` yields the same batches for the same arguments. Large files stream
(bounded memory); small embedded data may be materialised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "val", "test")


@dataclass
class Schema:
    """What a backbone needs to know about the inputs."""

    cat_cardinalities: list[int]
    n_dense: int
    task_names: list[str]
    n_users: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)


class MTDataset:
    """Base class of multi-task datasets (see the module docstring for the batch format)."""

    schema: Schema

    def batches(
        self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0, epoch: int = 0
    ) -> Iterator[dict]:
        """Yield batches of ``split`` (one of ``train``, ``val``, ``test``)."""
        raise NotImplementedError

    def num_rows(self, split: str) -> int | None:
        """Rows in ``split`` if known without a full pass, else None."""
        return None
