"""The ``aliexpress`` dataset: the AliExpress per-country CSVs streamed from disk (format, splits,
streaming, per-process readers and errors: see the :mod:`mtopt.data.aliexpress` docstring)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data._util import (
    check_batch_size,
    check_options,
    check_split_name,
    make_batch,
    unit_hash,
)
from mtopt.data.aliexpress.fastparse import resolve_engine
from mtopt.data.aliexpress.index import CsvFile
from mtopt.data.aliexpress.parse import CsvParsing
from mtopt.data.aliexpress.rankplan import RankPlanning, _check_rank
from mtopt.data.base import MTDataset, Schema
from mtopt.errors import InputError


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class AliExpress(CsvParsing, RankPlanning, MTDataset):
    """The AliExpress per-country CSVs streamed from disk (see the module docstring)."""

    supports_rank_shard = True

    def __init__(
        self,
        *,
        path: str | os.PathLike | None = None,
        train_path: str | os.PathLike | None = None,
        test_path: str | os.PathLike | None = None,
        train_file: str = "train.csv",
        test_file: str = "test.csv",
        val_from: str = "train",
        val_fraction: float = 0.1,
        val_seed: int = 0,
        cat_cardinalities: Sequence[int] | None = None,
        rename: Mapping[str, str] | None = None,
        categorical_columns: Sequence[str] | None = None,
        numerical_columns: Sequence[str] | None = None,
        label_columns: Sequence[str] = ("click", "conversion"),
        task_names: Sequence[str] | None = None,
        group_column: str | None = None,
        chunk_rows: int = 16384,
        shuffle_buffer: int = 131072,
        cache: bool = True,
        binary_cache: bool = True,
        delimiter: str = ",",
        csv_engine: str = "auto",
    ) -> None:
        if path is None and (train_path is None or test_path is None):
            raise InputError(
                "data.path: give the folder with train.csv and test.csv "
                "(or both data.train_path and data.test_path)"
            )
        folder = Path(path).expanduser() if path is not None else None
        if folder is not None and not folder.is_dir():
            raise InputError(f"data.path: {folder} is not a folder (expected train.csv/test.csv)")
        tr = Path(train_path).expanduser() if train_path else Path(folder or ".") / train_file
        te = Path(test_path).expanduser() if test_path else Path(folder or ".") / test_file
        if val_from not in ("train", "test"):
            raise InputError(f"data.val_from: 'train' or 'test', got {val_from!r}")
        if not 0.0 <= float(val_fraction) < 1.0:
            raise InputError(f"data.val_fraction: must lie in [0, 1), got {val_fraction}")
        if int(chunk_rows) != chunk_rows or chunk_rows < 1:
            raise InputError(f"data.chunk_rows: a positive integer, got {chunk_rows!r}")
        if int(shuffle_buffer) != shuffle_buffer or shuffle_buffer < 1:
            raise InputError(f"data.shuffle_buffer: a positive integer, got {shuffle_buffer!r}")
        self.val_from = val_from
        self.val_fraction = float(val_fraction)
        self.val_seed = int(val_seed)
        self.chunk_rows = int(chunk_rows)
        self.shuffle_buffer = int(shuffle_buffer)
        #: the CSV parser of the first pass and of CSV reads: ``polars`` or ``numpy``
        self.csv_engine = resolve_engine(csv_engine)
        self.files = {
            "train": CsvFile(tr, self.chunk_rows, delimiter, self.csv_engine),
            "test": CsvFile(te, self.chunk_rows, delimiter, self.csv_engine),
        }
        rename = dict(rename or {})
        self.label_columns = list(label_columns)
        if not self.label_columns:
            raise InputError("data.label_columns: at least one label column is needed")
        names = {}
        for key, f in self.files.items():
            names[key] = [rename.get(h, h) for h in f.header]
        header = names["train"]
        cat_cols = list(
            categorical_columns
            if categorical_columns is not None
            else sorted((h for h in header if h.startswith("categorical_")), key=_natural_key)
        )
        num_cols = list(
            numerical_columns
            if numerical_columns is not None
            else sorted((h for h in header if h.startswith("numerical_")), key=_natural_key)
        )
        if not cat_cols and not num_cols:
            raise InputError(
                f"{tr}: no feature columns (expected categorical_1… / numerical_1…; map other "
                "names with data.rename or list them in data.categorical_columns / "
                "data.numerical_columns)"
            )
        self.cat_cols, self.num_cols = cat_cols, num_cols
        wanted = [*cat_cols, *num_cols, *self.label_columns]
        if group_column is not None and (
            not isinstance(group_column, str) or group_column in wanted
        ):
            raise InputError(
                f"data.group_column: a column name that is neither a feature nor a label, got "
                f"{group_column!r} (e.g. search_id)"
            )
        self.group_col = group_column
        if group_column is not None:
            wanted.append(group_column)
        self.usecols: dict[str, list[int]] = {}
        for key, f in self.files.items():
            hdr = names[key]
            missing = [c for c in wanted if c not in hdr]
            if group_column in missing:
                raise InputError(
                    f"{f.path}: data.group_column: no column {group_column!r} in the header "
                    "(name the group column, e.g. search_id, or remove the option)"
                )
            if missing:
                raise InputError(
                    f"{f.path}: missing column(s) {', '.join(missing)} in the header (map "
                    "variant names with data.rename: {{file name: expected name}})"
                )
            dup = sorted({c for c in wanted if hdr.count(c) > 1})
            if dup:
                raise InputError(f"{f.path}: duplicate column(s) {', '.join(dup)} in the header")
            self.usecols[key] = [hdr.index(c) for c in wanted]
        self._given_cards = None if cat_cardinalities is None else list(cat_cardinalities)
        if self._given_cards is not None:
            if len(self._given_cards) != len(cat_cols) or any(
                int(c) != c or c < 1 for c in self._given_cards
            ):
                raise InputError(
                    f"data.cat_cardinalities: expected {len(cat_cols)} positive integers "
                    f"(one per categorical column), got {self._given_cards}"
                )
        #: counters of the last iteration started (see :func:`_fresh_stats`)
        self.stats = _fresh_stats()
        #: rows read (binary cache) or parsed (CSV) per split since construction
        self.rows_read = {"train": 0, "val": 0, "test": 0}
        self._kept: dict[tuple[str, bool | None], np.ndarray] = {}
        self.cards = [int(c) for c in self._given_cards] if self._given_cards is not None else []
        self.binary_cache = bool(binary_cache)
        self._binary: dict[str, tuple[Path, np.dtype]] = {}
        for key, f in self.files.items():
            f.load_index(cache)
            self._prepare(key, f, cache)
        if self._given_cards is None:
            self.cards = [
                int(max(a, b)) + 1
                for a, b in zip(
                    self.files["train"].index["cat_max"], self.files["test"].index["cat_max"]
                )
            ]
        names_out = list(task_names) if task_names is not None else list(self.label_columns)
        if len(names_out) != len(self.label_columns):
            raise InputError(
                f"data.task_names: expected {len(self.label_columns)} names, got {names_out}"
            )
        self.schema = Schema(
            cat_cardinalities=list(self.cards),
            n_dense=len(num_cols),
            task_names=names_out,
            extra={
                "dataset": "aliexpress",
                "train_file": str(tr),
                "test_file": str(te),
                "val_from": val_from,
                "val_fraction": self.val_fraction,
                **({"group_column": group_column} if group_column is not None else {}),
            },
            group_key="group" if group_column is not None else None,
            funnel=_funnel(self.label_columns, names_out),
        )

    # ------------------------------------------------------------------ splits
    def _source(self, split: str) -> tuple[str, bool | None]:
        """(file key, keep-val-rows flag: True keep val rows, False drop them, None keep all)."""
        check_split_name(split)
        if split == "val":
            return self.val_from, True
        key = "train" if split == "train" else "test"
        return key, (False if key == self.val_from else None)

    def _mask(self, first_row: int, rows: int, keep_val: bool | None) -> np.ndarray | None:
        if keep_val is None:
            return None
        is_val = unit_hash(np.arange(first_row, first_row + rows), self.val_seed) < (
            self.val_fraction
        )
        return is_val if keep_val else ~is_val

    def num_rows(self, split: str) -> int | None:
        key, keep_val = self._source(split)
        n = self.files[key].n_rows
        mask = self._mask(0, n, keep_val)
        return n if mask is None else int(mask.sum())

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
        """Stream ``split``; with ``shuffle``: permuted block order + a shuffle buffer, seeded
        by ``(seed, epoch, split)``. The last batch may be smaller.

        With ``world_size > 1``: process ``rank``'s local batches, read from its share of the
        blocks only (:meth:`rank_plan`), shuffled in its own buffer (seeded by ``(seed, epoch,
        split, rank, world_size)``); every process yields ``rank_plan(...)["batches"]``
        batches. ``world_size=1`` is the plain stream.
        """
        check_batch_size(batch_size)
        _check_rank(rank, world_size)
        key, keep_val = self._source(split)
        f = self.files[key]
        order, rng = self._block_order(split, f.n_blocks, shuffle, seed, epoch)
        self.stats = _fresh_stats()
        quota: int | None = None
        if world_size == 1:
            pieces = self._deal(key, order, 1)[0]
        else:
            plan = self._plan(split, key, keep_val, order, batch_size, world_size)
            pieces, quota = plan["pieces"][rank], plan["batches"]
            if rng is not None:  # the block order is common; the row shuffle is the process's
                rng = np.random.default_rng(
                    [int(seed), int(epoch), check_split_name(split), 1, rank, world_size]
                )
        limit = max(self.shuffle_buffer, batch_size) if shuffle else batch_size
        pending: list[tuple[np.ndarray, ...]] = []
        held = 0
        yielded = 0

        def drain(final: bool) -> Iterator[dict]:
            nonlocal pending, held, yielded
            cols = [np.concatenate([p[k] for p in pending]) for k in range(len(pending[0]))]
            n = len(cols[2])
            if rng is not None:
                perm = rng.permutation(n)
                cols = [c[perm] for c in cols]
            full = n if final else n - n % batch_size
            for s in range(0, full, batch_size):
                if quota is not None and yielded >= quota:
                    return
                e = min(s + batch_size, full)
                self.stats["batches"] += 1
                self.stats["rows_yielded"] += e - s
                yielded += 1
                part = [c[s:e] for c in cols]
                yield make_batch(*part[:3], group=part[3] if len(part) > 3 else None)
            rest = tuple(c[full:] for c in cols)
            pending = [rest] if len(rest[2]) else []
            held = len(rest[2])

        for b, lo, hi in pieces:
            if quota is not None and yielded >= quota:
                return  # the rest of this process's share is the documented drop
            rows = [a for a in self._read(key, b, lo, hi, split) if a is not None]
            mask = self._mask(b * f.chunk_rows + lo, len(rows[2]), keep_val)
            if mask is not None:
                rows = [a[mask] for a in rows]
            pending.append(tuple(rows))
            labels = rows[2]
            held += len(labels)
            self.stats["max_buffer_rows"] = max(self.stats["max_buffer_rows"], held)
            if held >= limit:
                yield from drain(final=False)
        if held and (quota is None or yielded < quota):
            yield from drain(final=True)


def _funnel(label_columns: list[str], task_names: list[str]) -> tuple[str, str] | None:
    """(click task, conversion task) when the labels include the files' ``click`` and
    ``conversion`` columns (``conversion`` is CTCVR: click and purchase), else ``None``."""
    if "click" in label_columns and "conversion" in label_columns:
        return (
            task_names[label_columns.index("click")],
            task_names[label_columns.index("conversion")],
        )
    return None


def _fresh_stats() -> dict[str, Any]:
    """The per-iteration counters of :attr:`AliExpress.stats`."""
    return {
        "max_buffer_rows": 0,  # most rows held in the shuffle buffer
        "max_block_rows": 0,  # most rows parsed / read at once
        "rows_read": 0,  # rows read from the binary cache or parsed from the CSV
        "pieces": [],  # (block, first row, end row) read, in order
        "batches": 0,
        "rows_yielded": 0,
    }


_KNOWN = [
    "path", "train_path", "test_path", "train_file", "test_file", "val_from", "val_fraction",
    "val_seed", "cat_cardinalities", "rename", "categorical_columns", "numerical_columns",
    "label_columns", "task_names", "group_column", "chunk_rows", "shuffle_buffer", "cache",
    "binary_cache", "delimiter", "csv_engine",
]  # fmt: skip


def build(**cfg: Any) -> AliExpress:
    """Factory for the registry: ``data:`` options of a recipe."""
    check_options("aliexpress", cfg, _KNOWN)
    return AliExpress(**cfg)
