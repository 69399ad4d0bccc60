"""``--nproc N``: run a command under torchrun and keep the exit-code contract.

The parent (:func:`run_torchrun`) starts ``python -m torch.distributed.run --standalone
--nproc-per-node N -m mtopt ...`` with ``MTOPT_ERROR_DIR`` set to a fresh temporary folder.
A worker that fails does not print its error: :func:`mtopt.cli.main` hands it to
:func:`report_worker_error`, which writes ``rank<R>.json`` (``code``, ``message``) there. The
parent forwards the workers' stderr (warnings, progress) live until the first failure, drops
what the launcher prints after it (its log lines and ``ChildFailedError`` traceback), and
then prints ONE line, the first worker error, and exits with that worker's code (2 bad input,
1 failed run). A worker that died without writing (killed, out of memory) gives one line with
its exit code or signal, exit 1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

#: environment variable naming the folder where workers leave their error
ERROR_DIR_ENV = "MTOPT_ERROR_DIR"
#: the start of a torch.distributed log line (``E1207 14:42:46.442000 ...``) or a traceback
_LAUNCHER_LINE = re.compile(rb"^(?:[WEIF]\d{4} \d\d:\d\d:\d\d|Traceback \(most recent call)")
_FAILED = re.compile(r"failed \(exitcode: (-?\d+)\) local_rank: (\d+)")


def report_worker_error(message: str, code: int) -> bool:
    """In a worker of :func:`run_torchrun`: write the error for the parent and return True
    (the caller then prints nothing). Elsewhere, or if the file cannot be written: False."""
    folder = os.environ.get(ERROR_DIR_ENV)
    if not folder or os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        return False
    rank = os.environ.get("RANK", "0")
    record = {"code": int(code), "message": message, "rank": rank, "time": time.time()}
    tmp = Path(folder) / f".rank{rank}.tmp"
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, Path(folder) / f"rank{rank}.json")
    except OSError:
        return False
    return True


def first_worker_error(folder: str | os.PathLike) -> tuple[str, int] | None:
    """``(message, code)`` of the earliest error a worker wrote to ``folder`` (lowest rank on a
    tie), or None."""
    records = []
    for p in Path(folder).glob("rank*.json"):
        try:
            rec = json.loads(p.read_text())
            records.append((float(rec["time"]), int(rec["rank"]), rec["message"], rec["code"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    if not records:
        return None
    _, _, message, code = min(records)
    return str(message), int(code) if int(code) in (1, 2) else 1


class _Relay:
    """Copies the launcher's stderr to ours until a failure shows, then keeps it (unprinted)."""

    def __init__(self, stream, folder: str) -> None:  # noqa: ANN001
        self.stream, self.folder = stream, folder
        self.quiet = False
        self.kept = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _failed(self) -> bool:
        return any(Path(self.folder).glob("rank*.json"))

    def _run(self) -> None:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        fd = self.stream.fileno()
        while chunk := os.read(fd, 65536):
            if not self.quiet and self._failed():
                self.quiet = True
            if self.quiet:
                self.kept += chunk
                continue
            for line in chunk.splitlines(keepends=True):
                if not self.quiet and _LAUNCHER_LINE.match(line):
                    self.quiet = True
                if self.quiet:
                    self.kept += line
                elif out is not None:
                    out.write(line)
                    out.flush()


def run_torchrun(nproc: int, args: Sequence[str]) -> tuple[int, str | None]:
    """Run ``mtopt ARGS`` in ``nproc`` processes; ``(exit code, one-line error or None)``."""
    with tempfile.TemporaryDirectory(prefix="mtopt-workers-") as folder:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc-per-node={nproc}", "-m", "mtopt", *args]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default too, said here explicitly
        env[ERROR_DIR_ENV] = folder
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
        relay = _Relay(proc.stderr, folder)
        try:
            code = proc.wait()
        finally:
            relay.thread.join(timeout=10)
        if code == 0:
            return 0, None
        found = first_worker_error(folder)
        if found is not None:
            message, wcode = found
            return wcode, message
        text = relay.kept.decode("utf-8", "replace")
        m = _FAILED.search(text)
        if m is not None:
            wc, rank = int(m.group(1)), m.group(2)
            how = f"was killed by signal {-wc}" if wc < 0 else f"exited with code {wc}"
            return 1, f"--nproc: worker process (local rank {rank}) {how} without an error message"
        return 1, f"--nproc: the launcher (torch.distributed.run) failed with exit code {code}"
