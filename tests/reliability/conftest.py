"""Shared helpers of the reliability suite: run ``python -m mtopt ...`` as a subprocess (with a
timeout, so a hang fails the test) and check the exit-code contract and the files on disk.

API (fixtures and plain functions):

- ``run_cli(*args, cwd=..., timeout=60, env=None, prefix=()) -> Result``: runs
  ``[*prefix, sys.executable, "-m", "mtopt", *args]`` with this checkout first on
  ``PYTHONPATH``; ``Result`` has ``code``, ``out``, ``err``, ``lines`` (stderr lines).
- ``assert_error(result, code, *needles)``: exit ``code``, exactly one stderr line, starting
  ``mtopt: error:``, no ``Traceback``, containing every needle (case-sensitive).
- ``snapshot(folder) -> dict[str, str]``: relative file path → sha256 of every file under
  ``folder`` (``{}`` if it does not exist); compare two snapshots with ``==``.
- ``mode_of(path) -> int``: the permission bits of a file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [x for x in self.err.splitlines() if x.strip()]


def run_cli(
    *args: str | os.PathLike,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> Result:
    """``python -m mtopt *args`` in a subprocess; a timeout fails the test (no hang)."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e.pop("MTOPT_DEBUG", None)
    e.setdefault("OMP_NUM_THREADS", "1")
    e.update(env or {})
    cmd = [*prefix, sys.executable, "-m", "mtopt", *map(str, args)]
    try:
        p = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: {' '.join(map(str, args))} ran past {timeout} s")
    return Result(p.returncode, p.stdout, p.stderr)


def assert_error(result: Result, code: int, *needles: str) -> str:
    """The contract: exit ``code``, one stderr line ``mtopt: error: ...``, no traceback."""
    assert "Traceback" not in result.err, result.err
    assert result.code == code, (result.code, result.err)
    assert len(result.lines) == 1, result.err
    line = result.lines[0]
    assert line.startswith("mtopt: error: "), line
    for n in needles:
        assert n in line, (n, line)
    return line


def snapshot(folder: str | os.PathLike) -> dict[str, str]:
    """Relative path → sha256 of every file under ``folder`` (hidden ones included)."""
    root = Path(folder)
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mode_of(path: str | os.PathLike) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def cli():
    return run_cli
