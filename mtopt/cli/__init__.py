"""The ``mtopt`` command line (Typer). Commands only parse and print; logic lives in the library.

Each command is defined in its own module, registered on the Typer ``app`` of
:mod:`mtopt.cli.app`, and imports heavy libraries (torch, cvxpy)
inside the command body, so ``mtopt --help`` stays fast.

Exit codes: 0 success; 1 a run on valid input did not succeed (e.g. solver ``not_converged``,
NaN loss); 2 bad input (one line on stderr naming the file/field and the fix, no traceback).
"""

from __future__ import annotations

import sys

import typer

# importing a command module registers its command on `app` (defined in mtopt.cli.app)
from mtopt.cli import compare, listing, solve, sweep, toy, train  # noqa: F401
from mtopt.cli.app import app, fail
from mtopt.errors import InputError, RunError

__all__ = ["app", "fail", "main"]


def main() -> None:
    """Console-script entry point: maps mtopt's typed errors to exit codes without tracebacks."""
    try:
        app(standalone_mode=True)
    except InputError as exc:
        typer.echo(f"mtopt: error: {exc}", err=True)
        sys.exit(2)
    except RunError as exc:
        typer.echo(f"mtopt: error: {exc}", err=True)
        sys.exit(1)
