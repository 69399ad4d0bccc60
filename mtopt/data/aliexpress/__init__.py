"""``aliexpress``: the public AliExpress per-country CSVs, streamed from disk.

Format (the processed files used by open-source multi-task ranking code): a header line
``search_id, categorical_1 … categorical_16, numerical_1 … numerical_63, click, conversion``,
then one row per impression; categorical values are integer ids ``≥ 0``, numerical values are
floats, ``click`` and ``conversion`` are 0/1 (``conversion`` = click and purchase: the CTCVR
label). ``search_id`` and any other column not selected is ignored, unless
``group_column: search_id`` makes it the group column of the GAUC (``batch["group"]``,
``schema.group_key = "group"``). With ``click`` and ``conversion`` among the label columns,
``schema.funnel`` declares them a click → conversion funnel (the CVR AUC on clicked rows).
Dataset: Li et al., "Improving Multi-Scenario Learning to Rank in E-commerce by Exploiting Task
Relationships in the Label Space", CIKM 2020 (AliExpress_NL / _ES / _FR / _US).

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
read binary blocks instead of parsing text (the binary reads are I/O bound). The CSV is parsed
by ``csv_engine``: ``polars`` (the optional ``mtopt[polars]`` extra; the first pass about
3.5× faster than numpy), ``numpy`` (``np.loadtxt``, roughly 55–65k rows/s) or ``auto``
(default: polars when it imports). Both give the same rows, cache bytes and error messages: the
polars engine hands any block it does not read exactly as numpy would to numpy
(:mod:`~mtopt.data.aliexpress.fastparse`). If the folder is read-only the caches are
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

from mtopt.data.aliexpress.dataset import AliExpress, build
from mtopt.data.aliexpress.fixture import write_synthetic_aliexpress_csv
from mtopt.data.aliexpress.index import INDEX_VERSION, CsvFile
from mtopt.data.aliexpress.parse import CsvParsing
from mtopt.data.aliexpress.rankplan import RankPlanning

__all__ = [
    "INDEX_VERSION",
    "AliExpress",
    "CsvFile",
    "CsvParsing",
    "RankPlanning",
    "build",
    "write_synthetic_aliexpress_csv",
]
