"""The dataset contract shared by every registered dataset.

A batch is a ``dict`` of CPU tensors:

- ``"cat"``: ``LongTensor[B, C]`` categorical ids, field j in ``[0, schema.cat_cardinalities[j])``
  (C may be 0);
- ``"dense"``: ``FloatTensor[B, F]`` float32 dense features (F may be 0);
- ``"labels"``: ``FloatTensor[B, n_tasks]`` in {0, 1};
- ``"user"`` (optional): ``LongTensor[B]`` user ids in ``[0, schema.n_users)`` for personalised
  methods (DRGrad's PPNet gate);
- ``"group"`` (optional): ``LongTensor[B]`` group ids (e.g. AliExpress ``search_id``) when the
  dataset declares one; the key named by ``schema.group_key`` groups the rows for GAUC.

Datasets are iterables of batches, seeded and reproducible: ``batches(split, batch_size,
shuffle, seed, epoch)`` yields the same batches for the same arguments. Large files stream
(bounded memory); small embedded data may be materialised.

Per-process readers (recipe ``data.shard: rank``, see docs/scaling.md). A dataset whose class
sets :attr:`MTDataset.supports_rank_shard` to ``True`` also accepts ``rank`` and ``world_size``
keyword arguments: ``batches(split, b, shuffle=..., seed=..., epoch=..., rank=r, world_size=W)``
then yields only process ``r``'s *local* batches of (at most) ``b`` rows, read from its own share
of the split, such that

- the ``W`` processes' shares are disjoint, and
- every process yields the **same number** of batches for the same arguments (the trainer steps
  all processes together; it also checks this each step and ends the epoch on every process as
  soon as one process's stream ends),
- ``world_size=1`` gives exactly the batches of the call without ``rank`` / ``world_size``.

The trainer only passes ``rank`` / ``world_size`` to such datasets, so a dataset (a plugin's
included) that leaves the attribute ``False`` keeps the narrower signature; with ``shard: rank``
it is served as with ``shard: global`` (every process slices the same global batches).
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
    #: batch key whose ids group the rows for the group AUC (``"user"``, ``"group"``); ``None``:
    #: no grouping, GAUC is reported as null
    group_key: str | None = None
    #: ``(click task, conversion task)`` when the conversion label is CTCVR (click and
    #: conversion): the evaluation then reports the CVR AUC on the clicked rows
    funnel: tuple[str, str] | None = None

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)


class MTDataset:
    """Base class of multi-task datasets (see the module docstring for the batch format)."""

    schema: Schema

    #: ``batches`` takes ``rank`` / ``world_size`` and reads only that process's share (see the
    #: module docstring); ``False``: the trainer slices global batches instead
    supports_rank_shard: bool = False

    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[dict]:
        """Yield batches of ``split`` (one of ``train``, ``val``, ``test``).

        ``rank`` / ``world_size`` are passed only when :attr:`supports_rank_shard` is true
        (subclasses without it need not accept them).
        """
        raise NotImplementedError

    def num_rows(self, split: str) -> int | None:
        """Rows in ``split`` if known without a full pass, else None."""
        return None
