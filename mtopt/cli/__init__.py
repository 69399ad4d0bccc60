"""The ``mtopt`` command line (Typer). Commands only parse and print; logic lives in the library.

Each command is defined in its own module below and imports heavy libraries (torch, cvxpy)
inside the command body, so ``mtopt --help`` stays fast.

Exit codes: 0 success; 1 a run on valid input did not succeed (e.g. solver ``not_converged``,
NaN loss); 2 bad input (one line on stderr naming the file/field and the fix, no traceback).
"""

from __future__ import annotations

import sys

import typer

from mtopt.errors import InputError, RunError

app = typer.Typer(
    name="mtopt",
    help="Multi-task optimization for multi-task ranking models (PUB and baselines).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Multi-task optimization for multi-task ranking models (PUB and baselines)."""


# command modules register themselves on `app` when imported
from mtopt.cli import compare, listing, solve, sweep, toy, train  # noqa: E402,F401


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``mtopt: error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"mtopt: error: {message}", err=True)
    return typer.Exit(code)


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
