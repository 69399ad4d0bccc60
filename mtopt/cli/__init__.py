"""The ``mtopt`` command line (Typer). Commands only parse and print; logic lives in the library.

Each command is defined in its own module, registered on the Typer ``app`` of
:mod:`mtopt.cli.app`, and imports heavy libraries (torch, cvxpy)
inside the command body, so ``mtopt --help`` stays fast.

Exit codes: 0 success; 1 a run on valid input did not succeed (e.g. solver ``not_converged``,
NaN loss), an OS error (output path not writable, disk full) or an unexpected exception;
2 bad input. Every error is one line on stderr, ``mtopt: error: ...``, without a traceback
(``MTOPT_DEBUG=1`` prints the traceback of OS errors and unexpected exceptions first). In a
worker process of ``--nproc`` the line goes to the parent instead (:mod:`mtopt.cli.launch`).
"""

from __future__ import annotations

import errno
import os
import sys

import typer

# importing a command module registers its command on `app` (defined in mtopt.cli.app)
from mtopt.cli import compare, listing, solve, sweep, toy, train  # noqa: F401
from mtopt.cli.app import app, fail
from mtopt.errors import InputError, MtoptError

__all__ = ["app", "describe_os_error", "fail", "main"]

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


def describe_os_error(exc: OSError) -> str:
    """One line for an :class:`OSError`: the path(s), the system's reason and what to do."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    text = f"{' -> '.join(paths)}: {reason}" if paths else f"a read or write failed: {reason}"
    hint = _OS_HINTS.get(exc.errno or -1)
    return f"{text}; {hint}" if hint else text


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _exit(message: str, code: int) -> None:
    from mtopt.cli.launch import report_worker_error

    message = _one_line(message)
    if not report_worker_error(message, code):  # --nproc worker: the parent prints it
        typer.echo(f"mtopt: error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """Console-script entry point: the one place that turns an exception into the exit-code
    contract, for every command (and in every ``--nproc`` worker):

    * :class:`InputError` -> its message, exit 2;
    * :class:`RunError` and any other :class:`MtoptError` -> its message, exit 1;
    * :class:`OSError` -> path, reason and a hint (:func:`describe_os_error`), exit 1;
    * any other exception -> ``unexpected <Type>: <message>``, exit 1.

    Always one ``mtopt: error:`` line on stderr, no traceback; ``MTOPT_DEBUG=1`` prints the
    traceback of the last two kinds before the line.
    """
    debug = os.environ.get("MTOPT_DEBUG", "") not in ("", "0")
    try:
        app(standalone_mode=True)
    except InputError as exc:
        _exit(str(exc), 2)
    except MtoptError as exc:  # RunError, SolverUnavailableError
        _exit(str(exc) or type(exc).__name__, 1)
    except OSError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        _exit(describe_os_error(exc), 1)
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        first = _one_line(str(exc))[:300]
        tail = "" if debug else " (MTOPT_DEBUG=1 shows the traceback)"
        _exit(f"unexpected {type(exc).__name__}{': ' + first if first else ''}{tail}", 1)
