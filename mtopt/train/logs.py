"""Per-step and per-evaluation CSV logs that survive interruption, and optional TensorBoard.

The CSV files are appended to while training and flushed at every checkpoint. On ``resume``
they are cut back to the rows at or before the checkpoint's step (a ``kill -9`` may have left
later rows, or half a row), so a resumed run's files equal an uninterrupted run's.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from mtopt.errors import InputError
from mtopt.io import atomic_write_text


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return str(v)


class CsvLog:
    """An append-only CSV file with a fixed header whose first column is ``step``."""

    def __init__(self, path: str | Path, columns: list[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self._fh: io.TextIOWrapper | None = None
        self._writer: Any = None

    def open(self, resume_step: int | None = None) -> None:
        """Start the file (fresh), or keep rows with ``step <= resume_step`` when resuming."""
        if resume_step is None or not self.path.exists():
            atomic_write_text(self.path, ",".join(self.columns) + "\n")
        else:
            self.truncate_after(resume_step)
        self._fh = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._fh)

    def truncate_after(self, step: int) -> None:
        """Rewrite the file keeping the complete rows with ``step <= step``. A file whose
        columns are a subset of :attr:`columns` (written before columns were added) is
        rewritten with the new header, the added cells empty."""
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        old = rows[0] if rows else []
        if not old or old[0] != "step" or not set(old) <= set(self.columns):
            raise InputError(
                f"out_dir: {self.path} was written by a different run configuration (its "
                "columns differ); resume with the same recipe or pass another out_dir"
            )
        keep = [self.columns]
        for row in rows[1:]:
            if len(row) != len(old):
                continue
            if old != self.columns:  # a log of an older mtopt: columns added since are empty
                cell = dict(zip(old, row))
                row = [cell.get(c, "") for c in self.columns]
            try:
                s = int(row[0])
            except ValueError:
                continue
            if s <= step:
                keep.append(row)
        buf = io.StringIO()
        csv.writer(buf).writerows(keep)
        atomic_write_text(self.path, buf.getvalue())

    def write(self, row: dict[str, Any]) -> None:
        assert self._writer is not None, "CsvLog.open() first"
        self._writer.writerow([_cell(row.get(c)) for c in self.columns])

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._writer = None


def read_csv(path: str | Path) -> list[dict[str, float | str | None]]:
    """Read a log written by :class:`CsvLog` (numbers as floats, empty cells as None)."""
    out: list[dict[str, float | str | None]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rec: dict[str, float | str | None] = {}
            for k, v in row.items():
                if v is None or v == "":
                    rec[k] = None
                    continue
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
            out.append(rec)
    return out


#: the error of ``output.tensorboard: true`` without the optional ``tensorboard`` package
TENSORBOARD_MISSING = (
    "output.tensorboard: true needs the 'tensorboard' package, an optional extra of mtopt "
    "(pip install 'mtopt[tensorboard]'), or set output.tensorboard: false"
)


def check_tensorboard(source: str | None = None) -> None:
    """:class:`InputError` (:data:`TENSORBOARD_MISSING`, prefixed with ``source``) when the
    ``tensorboard`` package cannot be imported."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        prefix = f"{source}: " if source else ""
        raise InputError(prefix + TENSORBOARD_MISSING) from None


class TensorBoardLog:
    """Scalars to TensorBoard through ``torch.utils.tensorboard`` (needs the ``tensorboard``
    extra: ``pip install 'mtopt[tensorboard]'``)."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        check_tensorboard()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise InputError(TENSORBOARD_MISSING) from None
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, step: int, values: dict[str, float | None]) -> None:
        for k, v in values.items():
            if v is not None and math.isfinite(v):
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
