"""The Typer application every ``mtopt`` command registers on.

Command modules import :data:`app` from here (never from :mod:`mtopt.cli`, which imports them),
so there is no import cycle: ``mtopt.cli`` imports the commands, the commands import this.
"""

from __future__ import annotations

import typer

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


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``mtopt: error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"mtopt: error: {message}", err=True)
    return typer.Exit(code)
