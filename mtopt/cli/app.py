"""The Typer application every ``mtopt`` command registers on.

Command modules import :data:`app` from here (never from :mod:`mtopt.cli`, which imports them),
so there is no import cycle: ``mtopt.cli`` imports the commands, the commands import this.
"""

from __future__ import annotations

import typer


def _flags_show_no_type() -> None:
    """``--help`` shows no ``<bool>`` after a flag that takes no value (``--json``, ``--quiet``,
    ``--progress/--no-progress``, ``--help`` itself).

    Typer's rich help prints every option's value type, flags included (typer 0.2x); its
    plain help does not. The rich renderer asks ``display_type_rich``; for a flag (or a
    counter) the answer is now None, as in the plain help. A no-op when typer has no such
    method."""
    from typer import core

    cls = getattr(core, "TyperOption", None)
    orig = getattr(cls, "display_type_rich", None)
    if orig is None or getattr(orig, "_mtopt_flags", False):
        return

    def display_type_rich(self, ctx):  # noqa: ANN001, ANN202
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        return orig(self, ctx)

    display_type_rich._mtopt_flags = True  # type: ignore[attr-defined]
    cls.display_type_rich = display_type_rich  # type: ignore[union-attr]


_flags_show_no_type()

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
