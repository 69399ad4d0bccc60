"""The exit-code contract, in one place: every exception that leaves a command becomes one line
on stderr and an exit code, never a traceback.

==========================  ====  ==============================================================
exception                   exit  stderr
==========================  ====  ==============================================================
:class:`InputError`         2     ``mtopt: error: <message>`` (names the file / field and the fix)
:class:`RunError`           1     ``mtopt: error: <message>``
:class:`OSError`            1     ``mtopt: error: <path>: <strerror>`` (disk full, permissions…)
:class:`MemoryError`        1     ``mtopt: error: out of memory …``
anything else               1     ``mtopt: error: internal error (<Type>: <first line>); …``
==========================  ====  ==============================================================

``MTOPT_DEBUG=1`` in the environment re-raises instead, so the traceback is printed.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import Any

from mtopt.errors import InputError, RunError

DEBUG_ENV = "MTOPT_DEBUG"


def _first_line(text: str) -> str:
    text = str(text).strip()
    return text.splitlines()[0] if text else ""


def describe(exc: BaseException) -> tuple[int, str]:
    """``(exit code, one-line message)`` for an exception that ended a command."""
    if isinstance(exc, InputError):
        return 2, _first_line(str(exc))
    if isinstance(exc, RunError):
        return 1, _first_line(str(exc))
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        what = exc.strerror or _first_line(str(exc)) or type(exc).__name__
        hint = ""
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            hint = "; free some space (or raise the file-size limit) and run again"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "; choose a writable place (e.g. --out elsewhere)"
        return 1, f"{where}: {what}{hint}" if where else f"{what}{hint}"
    if isinstance(exc, MemoryError):
        return 1, "out of memory; use smaller data, a smaller model or a smaller batch"
    first = _first_line(str(exc))
    detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return 1, f"internal error ({detail}); run again with {DEBUG_ENV}=1 for the traceback"


def guarded(fn: Callable[[], Any]) -> None:
    """Run ``fn`` and turn any exception into one stderr line and the contract's exit code."""
    try:
        fn()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        code, message = describe(exc)
        print(f"mtopt: error: {message}", file=sys.stderr, flush=True)
        sys.exit(code)
