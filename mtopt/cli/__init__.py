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

# importing a command module registers its command on `app` (defined in mtopt.cli.app)
from mtopt.cli import compare, listing, solve, sweep, toy, train, tune  # noqa: F401
from mtopt.cli.app import app, fail
from mtopt.cli.contract import describe_os_error, guarded

__all__ = ["app", "describe_os_error", "fail", "main"]


def main() -> None:
    """Console-script entry point: every exception becomes one line and an exit code
    (:mod:`mtopt.cli.contract`), never a traceback."""
    guarded(lambda: app(standalone_mode=True))
