"""The block index of one AliExpress CSV file: header, row count, the byte offset of every block
of ``chunk_rows`` rows (cached as ``<file>.mtopt-index.json``), and a block reader."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.data.aliexpress.fastparse import parse_block, resolve_engine
from mtopt.errors import InputError
from mtopt.io import atomic_write_json

INDEX_VERSION = 1
_SCAN_BYTES = 1 << 23


class CsvFile:
    """One CSV file: header, block byte offsets, and a block reader (see the module docs).

    ``engine`` (``auto``, ``polars`` or ``numpy``: ``data.csv_engine``) picks the block parser;
    both give the same arrays and errors (:mod:`~mtopt.data.aliexpress.fastparse`).
    ``numpy_blocks`` counts the blocks the polars engine handed to numpy.
    """

    def __init__(
        self, path: Path, chunk_rows: int, delimiter: str = ",", engine: str = "auto"
    ) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        self.delimiter = delimiter
        self.engine = resolve_engine(engine)
        self.numpy_blocks = 0
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
        """Parse block ``b`` (columns ``usecols``) into a float64 array ``[rows, len(usecols)]``
        (the values of ``np.loadtxt``, whichever the engine)."""
        offsets = self.index["offsets"]
        start = offsets[b]
        stop = offsets[b + 1] if b + 1 < len(offsets) else self.index["end"]
        with open(self.path, "rb") as fh:
            fh.seek(start)
            raw = fh.read(stop - start)
        if self.engine == "polars":
            arr = parse_block(
                raw.replace(b"\r", b"") if self.crlf else raw,
                len(self.header),
                usecols,
                self.delimiter,
                self.block_rows(b),
            )
            if arr is not None:
                return arr
            self.numpy_blocks += 1
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
