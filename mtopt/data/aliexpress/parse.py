"""Parsing and validation of AliExpress CSV blocks, the vocabulary pass and the binary cache
(``<file>.mtopt-cache.bin``): a mixin of :class:`~mtopt.data.aliexpress.dataset.AliExpress`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data._util import dense_problem
from mtopt.data.aliexpress.index import CsvFile
from mtopt.errors import InputError
from mtopt.io import atomic_write

#: the rows of a block: categorical ids, dense features, labels, group ids (or None)
Rows = tuple[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"]


class CsvParsing:
    """Dataset methods that turn CSV blocks (or binary-cache records) into arrays."""

    files: dict[str, CsvFile]
    cat_cols: list[str]
    num_cols: list[str]
    label_columns: list[str]
    group_col: str | None
    usecols: dict[str, list[int]]
    cards: list[int]
    _given_cards: list[int] | None
    binary_cache: bool
    _binary: dict[str, tuple[Path, np.dtype]]
    stats: dict[str, Any]
    rows_read: dict[str, int]

    def _record_dtype(self) -> np.dtype:
        nc, nd, nt = len(self.cat_cols), len(self.num_cols), len(self.label_columns)
        fields = [("cat", "<i4", (nc,)), ("dense", "<f4", (nd,)), ("labels", "u1", (nt,))]
        if self.group_col is not None:
            fields.append(("group", "<i8"))
        return np.dtype(fields)

    def _parse_csv(self, key: str, b: int) -> Rows:
        """Parse and validate block ``b`` of the CSV file ``key``."""
        f = self.files[key]
        arr = f.read_block(b, self.usecols[key])
        nc, nd, nt = len(self.cat_cols), len(self.num_cols), len(self.label_columns)
        cat_f, dense, labels = arr[:, :nc], arr[:, nc : nc + nd], arr[:, nc + nd : nc + nd + nt]
        group = arr[:, nc + nd + nt] if self.group_col is not None else None
        first_line = 2 + b * f.chunk_rows

        def fail(mask: np.ndarray, cols: list[str], problem: str) -> None:
            r, c = np.argwhere(mask)[0]
            raise InputError(f"{f.path}: line {first_line + r}: column {cols[c]}: {problem}")

        bad_dense = dense_problem(dense)
        if bad_dense is not None:
            r, c, problem = bad_dense
            raise InputError(
                f"{f.path}: line {first_line + r}: column {self.num_cols[c]}: {problem}"
            )
        bad = ~((labels == 0.0) | (labels == 1.0))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            fail(bad, self.label_columns, f"label {labels[r, c]:g} outside {{0, 1}}")
        bad = ~np.isfinite(cat_f) | (cat_f < 0) | (cat_f != np.floor(cat_f))
        if bad.any():
            fail(bad, self.cat_cols, "categorical ids must be integers >= 0")
        if (cat_f >= 2**31 - 1).any():
            fail(cat_f >= 2**31 - 1, self.cat_cols, "categorical ids must be < 2^31 - 1")
        if group is not None:
            bad = ~np.isfinite(group) | (group != np.floor(group)) | (np.abs(group) >= 2**53)
            if bad.any():
                fail(bad[:, None], [str(self.group_col)], "group ids must be integers")
            group = group.astype(np.int64)
        return cat_f.astype(np.int64), dense.astype(np.float32), labels.astype(np.float32), group

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
        handed = f.numpy_blocks
        for b in range(f.n_blocks):
            cat, dense, labels, group = self._parse_csv(key, b)
            self._check_cards(key, b, cat)
            if len(cat) and cat.shape[1]:
                mx = np.maximum(mx, cat.max(axis=0))
            if fh is not None:
                rec = np.empty(len(labels), dtype=dtype)
                rec["cat"], rec["dense"], rec["labels"] = cat, dense, labels
                if group is not None:
                    rec["group"] = group
                fh.write(rec.tobytes())
        f.index["cat_max"] = mx.tolist()
        f.index["columns"] = self.usecols[key]
        if f.numpy_blocks > handed:
            warnings.warn(
                f"{f.path}: {f.numpy_blocks - handed} of {f.n_blocks} blocks were parsed by numpy, "
                "not polars (spaces, quotes, text or a carriage return in them, in any column); "
                "the results are the same, the first pass slower",
                stacklevel=4,
            )

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
    ) -> Rows:
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
            group = rec["group"].astype(np.int64) if self.group_col is not None else None
            read = hi - lo
        else:
            cat, dense, labels, group = self._parse_csv(key, b)
            self._check_cards(key, b, cat)
            if (lo, hi) != (0, full):
                cat, dense, labels = cat[lo:hi], dense[lo:hi], labels[lo:hi]
                group = None if group is None else group[lo:hi]
            read = full
        self.stats["max_block_rows"] = max(self.stats["max_block_rows"], len(labels))
        self.stats["rows_read"] += read
        self.stats["pieces"].append((b, lo, hi))
        if split is not None:
            self.rows_read[split] += read
        return cat, dense, labels, group
