"""The exit-code contract, in one place: every exception that leaves a command becomes one line
on stderr and an exit code, never a traceback (also in every ``--nproc`` worker, whose line the
parent prints: :mod:`mtopt.cli.launch`).

==========================  ====  ==============================================================
exception                   exit  stderr
==========================  ====  ==============================================================
:class:`InputError`         2     ``mtopt: error: <message>`` (names the file / field and the fix)
other :class:`MtoptError`   1     ``mtopt: error: <message>`` (``RunError``, a missing backend)
:class:`OSError`            1     ``mtopt: error: <path>: <reason>; <what to do>`` (disk full…)
:class:`MemoryError`        1     ``mtopt: error: out of memory; …``
:class:`KeyboardInterrupt`  130   ``mtopt: error: interrupted; …`` (checkpoints are atomic)
anything else               1     ``mtopt: error: unexpected <Type>: <message> (MTOPT_DEBUG=1 …)``
==========================  ====  ==============================================================

A multi-line message is joined into one line. ``MTOPT_DEBUG=1`` prints the traceback of the
last three kinds before the line (the exit code stays the same).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import Any

from mtopt.errors import InputError, MtoptError

DEBUG_ENV = "MTOPT_DEBUG"

#: what to do about an OS error, by errno
_OS_HINTS = {
    errno.ENOSPC: "free disk space and run again",
    errno.EDQUOT: "free disk space (quota) and run again",
    errno.EFBIG: "the file size limit (ulimit -f) was reached; raise it or write elsewhere",
    errno.EACCES: "choose a path you can write to (e.g. another --out)",
    errno.EPERM: "choose a path you can write to (e.g. another --out)",
    errno.EROFS: "the file system is read-only; choose another --out",
    errno.EEXIST: "an existing file is in the way; choose another --out or remove it",
    errno.ENOTDIR: "a file stands where a folder is needed; choose another --out",
    errno.EISDIR: "a folder stands where a file is needed; choose another path",
    errno.ENOENT: "check the path",
}


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces (an error is always one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe_os_error(exc: OSError) -> str:
    """One line for an :class:`OSError`: the path(s), the system's reason and what to do."""
    reason = exc.strerror or one_line(str(exc)) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    text = f"{' -> '.join(paths)}: {reason}" if paths else f"a read or write failed: {reason}"
    hint = _OS_HINTS.get(exc.errno or -1)
    return f"{text}; {hint}" if hint else text


def debug() -> bool:
    """Whether ``MTOPT_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def describe(exc: BaseException) -> tuple[int, str]:
    """``(exit code, one-line message)`` for an exception that ended a command."""
    if isinstance(exc, InputError):
        return 2, one_line(str(exc))
    if isinstance(exc, MtoptError):
        return 1, one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        return 1, describe_os_error(exc)
    if isinstance(exc, MemoryError):
        return 1, "out of memory; use smaller data, a smaller model or a smaller batch"
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted; a run resumes from its last checkpoint with --resume"
    first = one_line(str(exc))[:300]
    tail = "" if debug() else f" ({DEBUG_ENV}=1 shows the traceback)"
    return 1, f"unexpected {type(exc).__name__}{': ' + first if first else ''}{tail}"


def guarded(fn: Callable[[], Any]) -> None:
    """Run ``fn`` and turn any exception into one stderr line and the contract's exit code."""
    try:
        fn()
    except SystemExit as exit_:
        interrupt = _interrupt_in(exit_)  # Typer turns Ctrl-C into Exit(130) and prints nothing
        if interrupt is None:
            raise
        _report(interrupt)
    except BaseException as exc:  # noqa: BLE001 - the one place every exception ends up
        _report(exc)


def _interrupt_in(exc: BaseException) -> KeyboardInterrupt | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__context__
    return None


def _report(exc: BaseException) -> None:
    """Print the one line of ``exc`` (or hand it to the ``--nproc`` parent) and exit."""
    code, message = describe(exc)
    if debug() and not isinstance(exc, MtoptError):
        import traceback

        traceback.print_exception(exc)
    from mtopt.cli.launch import report_worker_error

    if not report_worker_error(message, code):  # --nproc worker: the parent prints it
        print(f"mtopt: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
