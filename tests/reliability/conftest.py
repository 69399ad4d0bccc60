"""Shared helpers of the reliability suite: run the ``mtopt`` CLI as a separate process (with a
timeout, so a hang fails the test) and check the exit-code contract and the files on disk.

API (fixtures and plain functions):

- ``run_cli(*args, cwd=..., timeout=60, env=None, umask=None, fsize_kib=None, prefix=())
  -> Result``: runs ``mtopt *args`` in its own process, forked from a warm fork server
  (:mod:`forkserver`: the same ``mtopt.cli.main`` as ``python -m mtopt``, without 3 s of
  start-up per case), with ``umask`` and a file-size limit of ``fsize_kib`` KiB (``ulimit
  -f``) when given. With a ``prefix`` (a wrapper command) it runs
  ``[*prefix, sys.executable, "-m", "mtopt", *args]`` as a plain subprocess instead.
  ``Result`` has ``code``, ``out``, ``err``, ``lines`` (stderr lines).
- ``assert_error(result, code, *needles)``: exit ``code``, exactly one stderr line, starting
  ``mtopt: error:``, no ``Traceback``, containing every needle (case-sensitive).
- ``snapshot(folder) -> dict[str, str]``: relative file path → sha256 of every file under
  ``folder`` (``{}`` if it does not exist); compare two snapshots with ``==``.
- ``mode_of(path) -> int``: the permission bits of a file.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORKSERVER = Path(__file__).resolve().parent / "forkserver.py"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [x for x in self.err.splitlines() if x.strip()]


def _env(env: dict[str, str] | None) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e.pop("MTOPT_DEBUG", None)
    e.setdefault("OMP_NUM_THREADS", "1")
    e.update(env or {})
    return e


class _ForkServer:
    """The one warm server of this test session (started on first use, stopped at exit)."""

    proc: subprocess.Popen | None = None

    @classmethod
    def get(cls) -> subprocess.Popen:
        if cls.proc is None or cls.proc.poll() is not None:
            cls.proc = subprocess.Popen(
                [sys.executable, str(FORKSERVER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=_env(None),
                cwd=ROOT,
            )
            assert cls.proc.stdout is not None
            ready = cls.proc.stdout.readline()
            assert json.loads(ready) == {"ready": True}, ready
            atexit.register(cls.stop)
        return cls.proc

    @classmethod
    def stop(cls) -> None:
        if cls.proc is not None and cls.proc.poll() is None:
            assert cls.proc.stdin is not None
            cls.proc.stdin.close()
            cls.proc.wait(timeout=10)
        cls.proc = None


def run_cli(
    *args: str | os.PathLike,
    cwd: str | os.PathLike | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    umask: int | None = None,
    fsize_kib: int | None = None,
    prefix: tuple[str, ...] = (),
) -> Result:
    """``mtopt *args`` in its own process; a timeout fails the test (no hang)."""
    e = _env(env)
    if prefix:
        cmd = [*prefix, sys.executable, "-m", "mtopt", *map(str, args)]
        try:
            p = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"hang: {' '.join(map(str, args))} ran past {timeout} s")
        return Result(p.returncode, p.stdout, p.stderr)
    server = _ForkServer.get()
    req = {
        "args": [str(a) for a in args],
        "cwd": str(cwd or os.getcwd()),
        "env": e,
        "timeout": timeout,
        "umask": umask,
        "fsize": None if fsize_kib is None else int(fsize_kib) * 1024,
    }
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(json.dumps(req) + "\n")
    server.stdin.flush()
    ans = json.loads(server.stdout.readline())
    if ans["timeout"]:
        pytest.fail(f"hang: {' '.join(map(str, args))} ran past {timeout} s")
    return Result(ans["code"], ans["out"], ans["err"])


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


# -- a tiny `mtopt train` run, shared by the train fault and recovery tests ---------------------
QUICK = str(ROOT / "recipes" / "quickstart.yaml")
TINY = [
    *("--set", "data.n_train=300", "--set", "data.n_val=300", "--set", "data.n_test=300"),
    *("--set", "model.expert_dim=4", "--set", "optimizer.batch_size=128"),
    *("--set", "train.steps=2", "--set", "output.plots=false", "--set", "train.threads=1"),
    "-q",
]


def train(*args: str | os.PathLike, **kw) -> Result:
    """``mtopt train quickstart.yaml`` in the :data:`TINY` configuration, plus ``args``."""
    return run_cli("train", QUICK, *TINY, *args, **kw)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """One finished tiny run (2 steps, one checkpoint), copied by the tests that need one."""
    out = tmp_path_factory.mktemp("base") / "run"
    r = train("--out", str(out))
    assert r.code == 0, r.err
    return out


@pytest.fixture
def run_copy(base_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`base_run` for a test to change."""
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out
