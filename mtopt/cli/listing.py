"""``mtopt list [KIND]``: what is registered, with a one-line description each."""

from __future__ import annotations

import typer

from mtopt.cli.app import app
from mtopt.registry import KINDS, registry


@app.command("list")
def list_cmd(
    kind: str = typer.Argument(
        None, help=f"One of: {', '.join(KINDS)} (plural accepted). Default: all."
    ),
) -> None:
    """List registered solvers, backbones, methods, UMMs and datasets."""
    from mtopt.errors import InputError

    kinds = list(KINDS)
    if kind is not None:
        k = kind.lower().rstrip("s") if kind.lower() not in KINDS else kind.lower()
        if k not in KINDS:
            raise InputError(f"mtopt list: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        kinds = [k]
    for k in kinds:
        entries = registry.entries(k)
        if len(kinds) > 1:
            typer.echo(f"{k}s:")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            src = "" if e.source == "mtopt" else f"  [plugin: {e.source}]"
            cite = f" ({e.citation})" if e.citation else ""
            typer.echo(f"  {e.name.ljust(width)}  {e.description}{cite}{src}")
