"""Small I/O helpers: atomic writes so that nothing already written is half-overwritten."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, writer: Callable[[Any], None], mode: str = "w") -> Path:
    """Write ``path`` atomically: ``writer(fileobj)`` fills a temp file in the same folder,
    which is fsync'ed and then renamed over ``path``. On error the temp file is removed and any
    previous ``path`` is left untouched. The file's mode follows the umask (0644 under 022).
    A process killed mid-write leaves ``.<name>.<random>.tmp``; whoever owns ``path`` removes
    such files (e.g. :class:`mtopt.train.rundir.RunFolder`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; a written file follows the umask
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda fh: fh.write(text))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Atomically write ``obj`` as JSON (NaN/Inf are rejected: they are not JSON)."""
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    return atomic_write_text(path, text)
