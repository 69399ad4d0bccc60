"""``aliexpress``: the public AliExpress per-country CSVs, streamed from disk.

Format (the processed files used by open-source multi-task ranking code): a header line
``search_id, categorical_1 … categorical_16, numerical_1 … numerical_63, click, conversion``,
then one row per impression; categorical values are integer ids ``≥ 0``, numerical values are
floats, ``click`` and ``conversion`` are 0/1 (``conversion`` = click and purchase: the CTCVR
label). ``search_id`` and any other column not selected is ignored. Dataset: Li et al.,
"Improving Multi-Scenario Learning to Rank in E-commerce by Exploiting Task Relationships in
the Label Space", CIKM 2020 (AliExpress_NL / _ES / _FR / _US).

Files and splits. ``path`` is a folder holding ``train.csv`` and ``test.csv`` as distributed
(or give ``train_path`` / ``test_path``). ``test`` is the test file. ``val`` is carved out of
the train file (``val_from: train``, default) — a row goes to ``val`` iff a seeded hash of its
row index is below ``val_fraction`` (default 0.1), so the assignment does not depend on chunk
sizes or read order; the rest is ``train``. ``val_from: test`` splits the test file instead
(the PUB reference code uses half of the test file as validation: ``val_fraction: 0.5``).

Streaming. A first pass over each file records the byte offset of every block of
``chunk_rows`` rows and the row count, validates every row, and computes each field's
vocabulary size as max id + 1 over train and test (unless ``cat_cardinalities`` is given). It
is cached next to the file as ``<file>.mtopt-index.json`` (atomic, keyed by the file's size and
modification time). With ``binary_cache: true`` (default) the same pass also writes the parsed
rows to ``<file>.mtopt-cache.bin`` (fixed-size records: int32 ids, float32 features, uint8
labels; about 60 % of the CSV's size for the standard schema), so that later epochs and runs
read binary blocks instead of parsing text (CSV parsing with numpy runs at roughly 50–60k
rows/s per core; the binary reads are I/O bound). If the folder is read-only the caches are
skipped with a warning and the CSV is parsed on every pass. Batches are read block by block:
with ``shuffle`` the block order is permuted and rows are shuffled within a buffer of
``shuffle_buffer`` rows, so memory stays bounded by ``shuffle_buffer + chunk_rows`` rows
whatever the file size.

Per-process readers (``data.shard: rank`` with several processes; docs/scaling.md).
``batches(..., rank=r, world_size=W)`` reads only process ``r``'s share of the split: the
epoch's block order (the same permutation on every process) is dealt round-robin — the
``i``-th full block to process ``i mod W`` — for as many complete rounds as there are; the full
blocks left over (fewer than ``W``) and the file's short last block are each cut into ``W``
contiguous row ranges, one per process. The shares are disjoint and cover the file; their row
counts differ by at most one row per cut block, plus the imbalance of the hashed validation rows
between the blocks. Each process shuffles its rows in its own buffer of ``shuffle_buffer``
rows. So that the processes step together, every process yields ``c = min_r ⌈R_r / b⌉``
local batches of ``b`` rows (``R_r``: process ``r``'s rows of the split, known from the block
index and the validation hash without reading data; the process with the fewest rows ends with
a partial batch); process ``r`` drops the ``max(0, R_r − c·b)`` rows its stream would yield last,
in total at most ``Σ_r (R_r − min R)`` rows per epoch (:meth:`AliExpress.rank_plan` reports the
numbers). Blocks read from the CSV (no binary cache) are parsed whole even when only a row
range of them is used.

Bad input raises :class:`~mtopt.errors.InputError` naming the file, the line and the problem:
missing file, missing columns, non-numeric or NaN values, labels outside {0, 1}, negative or
non-integer categorical ids, ids beyond a given vocabulary size. With ``cat_cardinalities``
given and ``binary_cache: false`` there is no validation pass, and these errors surface when
the offending block is first read.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data._util import (
    check_batch_size,
    check_options,
    check_split_name,
    epoch_rng,
    make_batch,
    unit_hash,
)
from mtopt.data.base import MTDataset, Schema
from mtopt.errors import InputError
from mtopt.io import atomic_write, atomic_write_json

INDEX_VERSION = 1
_SCAN_BYTES = 1 << 23


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class CsvFile:
    """One CSV file: header, block byte offsets, and a block reader (see the module docs)."""

    def __init__(self, path: Path, chunk_rows: int, delimiter: str = ",") -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        self.delimiter = delimiter
        if not path.is_file():
            raise InputError(f"{path}: file not found (set data.path to the folder with it)")
        stat = path.stat()
        self.identity = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        with open(path, "rb") as fh:
            raw_header = fh.readline()
        if not raw_header.strip():
            raise InputError(f"{path}: empty file or empty header line")
        self.crlf = raw_header.endswith(b"\r\n")
        self.header = [
            h.strip().strip('"').strip("'")
            for h in raw_header.decode("utf-8", errors="replace").strip().split(delimiter)
        ]
        self.data_start = len(raw_header)
        self.index: dict[str, Any] = {}

    # ------------------------------------------------------------------ index
    @property
    def cache_path(self) -> Path:
        return self.path.with_name(self.path.name + ".mtopt-index.json")

    def _index_key(self) -> dict[str, Any]:
        return {"version": INDEX_VERSION, **self.identity, "chunk_rows": self.chunk_rows}

    def load_index(self, use_cache: bool) -> None:
        """Load the cached block index, or scan the file for it."""
        key = self._index_key()
        if use_cache and self.cache_path.is_file():
            try:
                cached = json.loads(self.cache_path.read_text())
            except (OSError, ValueError):
                cached = None
            if isinstance(cached, dict) and all(cached.get(k) == v for k, v in key.items()):
                self.index = cached
                return
        self.index = {**key, **self._scan()}

    def save_index(self, use_cache: bool) -> None:
        if not use_cache:
            return
        try:
            atomic_write_json(self.cache_path, self.index, indent=None)
        except OSError as exc:
            warnings.warn(
                f"{self.cache_path}: cannot write the index cache ({exc}); it will be rebuilt "
                "on every run",
                stacklevel=3,
            )

    def _scan(self) -> dict[str, Any]:
        """Row count and the byte offset of every ``chunk_rows``-th row (vectorised)."""
        size = self.identity["size"]
        with open(self.path, "rb") as fh:
            # ignore trailing blank lines / whitespace at the end of the file
            end = size
            while end > self.data_start:
                step = min(4096, end - self.data_start)
                fh.seek(end - step)
                tail = fh.read(step)
                stripped = tail.rstrip()
                end -= step - len(stripped)
                if stripped:
                    break
            offsets = [self.data_start]
            newlines = 0
            fh.seek(self.data_start)
            pos = self.data_start
            while pos < end:
                chunk = fh.read(min(_SCAN_BYTES, end - pos))
                if not chunk:
                    break
                nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
                rows_ending = newlines + np.arange(1, len(nl) + 1)
                cut = nl[rows_ending % self.chunk_rows == 0]
                offsets.extend((pos + cut + 1).tolist())
                newlines += len(nl)
                pos += len(chunk)
        n_rows = newlines + 1 if end > self.data_start else 0
        if offsets[-1] >= end:
            offsets.pop()
        if n_rows == 0:
            offsets = []
        return {"n_rows": n_rows, "offsets": offsets, "end": end}

    @property
    def n_rows(self) -> int:
        return int(self.index["n_rows"])

    @property
    def n_blocks(self) -> int:
        return len(self.index["offsets"])

    def block_rows(self, b: int) -> int:
        return min(self.chunk_rows, self.n_rows - b * self.chunk_rows)

    def read_block(self, b: int, usecols: Sequence[int]) -> np.ndarray:
        """Parse block ``b`` (columns ``usecols``) into a float64 array ``[rows, len(usecols)]``."""
        offsets = self.index["offsets"]
        start = offsets[b]
        stop = offsets[b + 1] if b + 1 < len(offsets) else self.index["end"]
        with open(self.path, "rb") as fh:
            fh.seek(start)
            raw = fh.read(stop - start)
        text = raw.decode("utf-8", errors="replace")
        if self.crlf:
            text = text.replace("\r", "")
        first_line = 2 + b * self.chunk_rows  # 1-based file line of the block's first row
        try:
            arr = np.loadtxt(
                io.StringIO(text),
                delimiter=self.delimiter,
                dtype=np.float64,
                usecols=list(usecols),
                ndmin=2,
                comments=None,
            )
        except ValueError as exc:
            raise InputError(self._explain(text, first_line, usecols, exc)) from None
        expected = self.block_rows(b)
        if arr.shape[0] != expected:
            raise InputError(
                f"{self.path}: lines {first_line}-{first_line + expected - 1}: expected "
                f"{expected} rows, parsed {arr.shape[0]} (blank lines inside the file?)"
            )
        return arr

    def _explain(self, text: str, first_line: int, usecols: Sequence[int], exc: Exception) -> str:
        """Find the first bad line of a block that numpy refused (slow path, errors only)."""
        need = max(usecols) + 1
        for k, line in enumerate(text.split("\n")):
            if not line.strip():
                continue
            fields = line.split(self.delimiter)
            where = f"{self.path}: line {first_line + k}:"
            if len(fields) < need:
                return (
                    f"{where} expected {len(self.header)} comma-separated columns, got "
                    f"{len(fields)}"
                )
            for j in usecols:
                try:
                    float(fields[j])
                except ValueError:
                    return (
                        f"{where} column {self.header[j]}: could not convert {fields[j]!r} to "
                        "a number"
                    )
        return f"{self.path}: lines {first_line}+: {exc}"


class AliExpress(MTDataset):
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
        chunk_rows: int = 16384,
        shuffle_buffer: int = 131072,
        cache: bool = True,
        binary_cache: bool = True,
        delimiter: str = ",",
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
        self.files = {
            "train": CsvFile(tr, self.chunk_rows, delimiter),
            "test": CsvFile(te, self.chunk_rows, delimiter),
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
        self.usecols: dict[str, list[int]] = {}
        for key, f in self.files.items():
            hdr = names[key]
            missing = [c for c in wanted if c not in hdr]
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
            },
        )

    # ------------------------------------------------------------------ parsing
    def _record_dtype(self) -> np.dtype:
        nc, nd, nt = len(self.cat_cols), len(self.num_cols), len(self.label_columns)
        return np.dtype([("cat", "<i4", (nc,)), ("dense", "<f4", (nd,)), ("labels", "u1", (nt,))])

    def _parse_csv(self, key: str, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Parse and validate block ``b`` of the CSV file ``key``."""
        f = self.files[key]
        arr = f.read_block(b, self.usecols[key])
        nc, nd = len(self.cat_cols), len(self.num_cols)
        cat_f, dense, labels = arr[:, :nc], arr[:, nc : nc + nd], arr[:, nc + nd :]
        first_line = 2 + b * f.chunk_rows

        def fail(mask: np.ndarray, cols: list[str], problem: str) -> None:
            r, c = np.argwhere(mask)[0]
            raise InputError(f"{f.path}: line {first_line + r}: column {cols[c]}: {problem}")

        if not np.isfinite(dense).all():
            fail(~np.isfinite(dense), self.num_cols, "NaN or infinite value (impute or drop it)")
        bad = ~((labels == 0.0) | (labels == 1.0))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            fail(bad, self.label_columns, f"label {labels[r, c]:g} outside {{0, 1}}")
        bad = ~np.isfinite(cat_f) | (cat_f < 0) | (cat_f != np.floor(cat_f))
        if bad.any():
            fail(bad, self.cat_cols, "categorical ids must be integers >= 0")
        if (cat_f >= 2**31 - 1).any():
            fail(cat_f >= 2**31 - 1, self.cat_cols, "categorical ids must be < 2^31 - 1")
        return cat_f.astype(np.int64), dense.astype(np.float32), labels.astype(np.float32)

    def _check_cards(self, key: str, b: int, cat: np.ndarray) -> None:
        if self._given_cards is None or not cat.size:
            return
        over = cat >= np.asarray(self.cards)
        if over.any():
            f = self.files[key]
            r, c = np.argwhere(over)[0]
            raise InputError(
                f"{f.path}: line {2 + b * f.chunk_rows + r}: column {self.cat_cols[c]}: id "
                f"{cat[r, c]} >= data.cat_cardinalities[{c}] = {self.cards[c]} (raise it, or "
                "omit cat_cardinalities to compute them)"
            )

    def _convert(self, key: str, fh: Any) -> None:
        """One pass over file ``key``: validate every block, record the per-field max id, and
        (with ``fh``) append the rows to the binary cache."""
        f = self.files[key]
        dtype = self._record_dtype()
        mx = np.full(len(self.cat_cols), -1, dtype=np.int64)
        for b in range(f.n_blocks):
            cat, dense, labels = self._parse_csv(key, b)
            self._check_cards(key, b, cat)
            if len(cat) and cat.shape[1]:
                mx = np.maximum(mx, cat.max(axis=0))
            if fh is not None:
                rec = np.empty(len(labels), dtype=dtype)
                rec["cat"], rec["dense"], rec["labels"] = cat, dense, labels
                fh.write(rec.tobytes())
        f.index["cat_max"] = mx.tolist()
        f.index["columns"] = self.usecols[key]

    def _prepare(self, key: str, f: CsvFile, cache: bool) -> None:
        """Make block reads possible: reuse or build the binary cache, or validate the CSV
        (the vocabulary pass) when the cardinalities are not given."""
        bin_path = f.path.with_name(f.path.name + ".mtopt-cache.bin")
        dtype = self._record_dtype()
        layout = {"columns": self.usecols[key], "descr": str(dtype.descr)}
        fresh = f.index.get("columns") == self.usecols[key] and "cat_max" in f.index
        if self.binary_cache:
            info = f.index.get("binary")
            if (
                fresh
                and info == layout
                and bin_path.is_file()
                and bin_path.stat().st_size == f.n_rows * dtype.itemsize
            ):
                self._binary[key] = (bin_path, dtype)
                if self._given_cards is not None:
                    self._check_all_cards(key)
                return
            try:
                atomic_write(bin_path, lambda fh: self._convert(key, fh), mode="wb")
            except OSError as exc:
                warnings.warn(
                    f"{bin_path}: cannot write the binary cache ({exc}); reading the CSV "
                    "directly (slower)",
                    stacklevel=3,
                )
            else:
                f.index["binary"] = layout
                self._binary[key] = (bin_path, dtype)
                f.save_index(cache)
                return
        if self._given_cards is None and not fresh:
            self._convert(key, None)
        f.save_index(cache)

    def _check_all_cards(self, key: str) -> None:
        mx = np.asarray(self.files[key].index["cat_max"])
        if mx.size and (mx >= np.asarray(self.cards)).any():
            c = int(np.argmax(mx >= np.asarray(self.cards)))
            raise InputError(
                f"{self.files[key].path}: column {self.cat_cols[c]}: id {mx[c]} >= "
                f"data.cat_cardinalities[{c}] = {self.cards[c]} (raise it, or omit "
                "cat_cardinalities to compute them)"
            )

    def _read(
        self, key: str, b: int, lo: int = 0, hi: int | None = None, split: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``lo:hi`` (default: all) of block ``b`` of file ``key`` (from the binary cache
        when there is one: only those rows are read; from the CSV the block is parsed whole)."""
        f = self.files[key]
        full = f.block_rows(b)
        hi = full if hi is None else hi
        if key in self._binary:
            path, dtype = self._binary[key]
            rec = np.fromfile(
                path,
                dtype=dtype,
                count=hi - lo,
                offset=(b * f.chunk_rows + lo) * dtype.itemsize,
            )
            cat = rec["cat"].astype(np.int64)
            dense = np.ascontiguousarray(rec["dense"])
            labels = rec["labels"].astype(np.float32)
            read = hi - lo
        else:
            cat, dense, labels = self._parse_csv(key, b)
            self._check_cards(key, b, cat)
            if (lo, hi) != (0, full):
                cat, dense, labels = cat[lo:hi], dense[lo:hi], labels[lo:hi]
            read = full
        self.stats["max_block_rows"] = max(self.stats["max_block_rows"], len(labels))
        self.stats["rows_read"] += read
        self.stats["pieces"].append((b, lo, hi))
        if split is not None:
            self.rows_read[split] += read
        return cat, dense, labels

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

    # ------------------------------------------------------------------ per-process shares
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
        pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        held = 0
        yielded = 0

        def drain(final: bool) -> Iterator[dict]:
            nonlocal pending, held, yielded
            cat = np.concatenate([p[0] for p in pending])
            dense = np.concatenate([p[1] for p in pending])
            labels = np.concatenate([p[2] for p in pending])
            if rng is not None:
                perm = rng.permutation(len(labels))
                cat, dense, labels = cat[perm], dense[perm], labels[perm]
            full = len(labels) if final else len(labels) - len(labels) % batch_size
            for s in range(0, full, batch_size):
                if quota is not None and yielded >= quota:
                    return
                e = min(s + batch_size, full)
                self.stats["batches"] += 1
                self.stats["rows_yielded"] += e - s
                yielded += 1
                yield make_batch(cat[s:e], dense[s:e], labels[s:e])
            rest = (cat[full:], dense[full:], labels[full:])
            pending = [rest] if len(rest[2]) else []
            held = len(rest[2])

        for b, lo, hi in pieces:
            if quota is not None and yielded >= quota:
                return  # the rest of this process's share is the documented drop
            cat, dense, labels = self._read(key, b, lo, hi, split)
            mask = self._mask(b * f.chunk_rows + lo, len(labels), keep_val)
            if mask is not None:
                cat, dense, labels = cat[mask], dense[mask], labels[mask]
            pending.append((cat, dense, labels))
            held += len(labels)
            self.stats["max_buffer_rows"] = max(self.stats["max_buffer_rows"], held)
            if held >= limit:
                yield from drain(final=False)
        if held and (quota is None or yielded < quota):
            yield from drain(final=True)


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


def _check_rank(rank: int, world_size: int) -> None:
    if int(world_size) != world_size or world_size < 1:
        raise InputError(f"world_size must be a positive integer, got {world_size!r}")
    if int(rank) != rank or not 0 <= rank < world_size:
        raise InputError(f"rank must be an integer in [0, {world_size}), got {rank!r}")


def write_synthetic_aliexpress_csv(
    path: str | os.PathLike,
    rows: int,
    seed: int = 0,
    *,
    world_seed: int = 0,
    n_cat: int = 16,
    n_num: int = 63,
    loss_ratio: float | None = 23.0,
    chunk: int = 50000,
) -> Path:
    """Write ``rows`` rows of learnable synthetic data in the AliExpress CSV schema.

    Rows come from :class:`~mtopt.data.synthetic.SyntheticRanking` with the ``aliexpress``
    preset (``n_cat`` categorical fields, ``n_num`` dense features, click and conversion =
    CTCVR labels; ``loss_ratio`` as in that dataset, ``None`` for its default 10 % conversion
    rate after a click). ``world_seed`` fixes the generative model and ``seed`` the rows, so a
    ``train.csv`` (seed 0) and a ``test.csv`` (seed 1) written with the same ``world_seed``
    share the signal. Written in chunks (bounded memory), atomically. For tests and
    benchmarks.
    """
    from mtopt.data.synthetic import ALIEXPRESS_CARDINALITIES, SyntheticRanking

    cards = (ALIEXPRESS_CARDINALITIES * (n_cat // 16 + 1))[:n_cat]
    gen = SyntheticRanking(
        seed=world_seed,
        n_train=0,
        n_val=0,
        n_test=0,
        cat_cardinalities=cards,
        n_dense=n_num,
        loss_ratio=loss_ratio,
    )
    header = (
        ["search_id"]
        + [f"categorical_{i + 1}" for i in range(n_cat)]
        + [f"numerical_{i + 1}" for i in range(n_num)]
        + ["click", "conversion"]
    )
    fmt = ["%d"] * (1 + n_cat) + ["%.6g"] * n_num + ["%d", "%d"]

    def writer(fh: Any) -> None:
        fh.write(",".join(header) + "\n")
        done = 0
        part = 0
        while done < rows:
            m = min(chunk, rows - done)
            rng = np.random.default_rng([int(seed), part, 0xA11])
            a = gen.generate(rng, m)
            table = np.concatenate(
                [
                    np.arange(done, done + m, dtype=np.float64)[:, None],
                    a["cat"].astype(np.float64),
                    a["dense"].astype(np.float64),
                    a["labels"].astype(np.float64),
                ],
                axis=1,
            )
            np.savetxt(fh, table, fmt=fmt, delimiter=",")
            done += m
            part += 1

    return atomic_write(path, writer)


_KNOWN = [
    "path", "train_path", "test_path", "train_file", "test_file", "val_from", "val_fraction",
    "val_seed", "cat_cardinalities", "rename", "categorical_columns", "numerical_columns",
    "label_columns", "task_names", "chunk_rows", "shuffle_buffer", "cache", "binary_cache",
    "delimiter",
]  # fmt: skip


def build(**cfg: Any) -> AliExpress:
    """Factory for the registry: ``data:`` options of a recipe."""
    check_options("aliexpress", cfg, _KNOWN)
    return AliExpress(**cfg)
