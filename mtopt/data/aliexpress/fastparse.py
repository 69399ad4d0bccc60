"""The ``polars`` engine of the AliExpress CSV reader (``data.csv_engine``).

``np.loadtxt`` parses an AliExpress-shaped file at about 55–65k rows/s on two cores; polars'
CSV reader parses the same blocks about four times faster (the whole first pass, 3.5× faster:
docs/data.md). This module parses one block with polars and returns *exactly* the float64 array
that :meth:`CsvFile.read_block` gets from ``np.loadtxt``, or ``None``, and then the caller
parses the block with numpy, which gives the values or the error message (file, line, column,
problem). So the engine changes the speed,
never the rows, the binary cache or the messages:

* polars parses the used columns as ``Float64`` — correctly rounded, as numpy's parser (Python's
  ``PyOS_string_to_double``) is — and the caller casts the dense columns to float32, so both
  engines round twice in the same way (a direct float32 parse would differ in rare halfway
  cases);
* a block is handed to polars only if every byte is in the plain number grammar (digits,
  ``. e E + -``, the delimiter, ``\\n``). On those bytes polars and numpy accept the same
  fields with the same values (``tests/data/test_aliexpress_engines.py`` fuzzes this). Spaces,
  letters (``nan``, ``inf``), quotes, a stray ``\\r`` or non-ASCII text anywhere in the block,
  unused columns included, send it to numpy;
* a polars error about the data (``PolarsError``; a changed polars API is not caught), an empty
  field (null), or a row count other than the block's (blank lines) sends it to numpy too.
  Those are the blocks numpy rejects, or rows polars reads differently (more fields than the
  header), so the slow path runs for bad files only (and the first pass warns when a valid
  file took it: :attr:`CsvFile.numpy_blocks`).

polars is an optional dependency (``pip install 'mtopt[polars]'``), imported when the engine is
resolved (``auto`` or ``polars``), not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtopt.errors import InputError

#: values of ``data.csv_engine``
CSV_ENGINES = ("auto", "polars", "numpy")
#: the bytes of the plain number grammar that polars and numpy read alike (plus the delimiter)
_PLAIN = b"0123456789.eE+-\n"


def polars_available() -> bool:
    """Whether ``polars`` imports (it is imported here, ~0.3 s once: a broken install, such as
    polars 2 without its runtime package, counts as missing)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(csv_engine: str) -> str:
    """``"polars"`` or ``"numpy"`` for ``csv_engine`` (``auto``: polars when installed).

    An unknown value, or ``polars`` without the package, is an :class:`InputError` naming
    ``data.csv_engine`` (as the dataset's other options) and the pip command.
    """
    if csv_engine not in CSV_ENGINES:
        raise InputError(f"data.csv_engine: one of {', '.join(CSV_ENGINES)}, got {csv_engine!r}")
    if csv_engine == "numpy":
        return "numpy"
    if polars_available():
        return "polars"
    if csv_engine == "polars":
        raise InputError(
            "data.csv_engine: 'polars' is unavailable: the polars package is not installed "
            "(or does not import); install it with `pip install 'mtopt[polars]'` (or `pip "
            "install polars`), or set data.csv_engine: auto or numpy"
        )
    return "numpy"


def parse_block(
    raw: bytes, n_columns: int, usecols: Sequence[int], delimiter: str, rows: int
) -> np.ndarray | None:
    """The float64 array ``[rows, len(usecols)]`` that ``np.loadtxt`` would parse from ``raw``
    (one block of data lines, ``\\r`` already removed from a CRLF file), or ``None`` when the
    block has to go to numpy (see the module docstring). ``n_columns``: the header's columns.
    """
    sep = delimiter.encode("utf-8", errors="replace")
    if len(sep) != 1 or sep in _PLAIN or raw.translate(None, _PLAIN + sep):
        return None
    import polars as pl

    used = sorted(set(usecols))
    if not used or used[-1] >= n_columns:
        return None
    wanted = set(used)
    schema = {f"c{i}": (pl.Float64 if i in wanted else pl.String) for i in range(n_columns)}
    try:
        df = pl.read_csv(
            raw,
            has_header=False,
            schema=schema,
            columns=used,
            separator=delimiter,
            quote_char=None,
            comment_prefix=None,
            null_values=None,
        )
    except pl.exceptions.PolarsError:  # a refusal: numpy parses the block (and explains it)
        return None
    if df.height != rows or df.width != len(used) or df.null_count().sum_horizontal().item():
        return None
    if len(used) == len(usecols):  # the columns in the caller's order, one C-order copy
        arr = df.select([f"c{i}" for i in usecols]).to_numpy(order="c")
    else:  # a column used twice (say a label that is also a feature)
        pos = {c: k for k, c in enumerate(used)}
        arr = np.ascontiguousarray(df.to_numpy()[:, [pos[c] for c in usecols]])
    if arr.dtype != np.float64 or arr.shape != (rows, len(usecols)):
        return None
    return arr
