"""Example mtopt plugin: registers the ``scipy-root`` α solver via ``mtopt.plugins``."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def register(registry: Any) -> None:
    """Entry point called by mtopt's registry (lazy target: nothing heavy imported here)."""
    registry.register(
        "solver",
        "scipy-root",
        "mtopt_example_plugin.solver:solve",
        "Example plugin: scipy.optimize.root (hybr) on w*(Cw)=1, w=exp(x), unit-diagonal C.",
    )
