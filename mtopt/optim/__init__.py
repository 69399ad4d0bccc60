"""Optimizers: PUB (Parameter Update Balancing), its base rules and UMMs, and the standalone
ClippyAdam / AdaTask baselines.

Importing :mod:`mtopt.optim` is cheap (no torch); the classes load on first attribute access::

    from mtopt.optim import PUB
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PUB": "mtopt.optim.pub",
    "AdaTask": "mtopt.optim.pub",
    "LastStep": "mtopt.optim.pub",
    "diff_metric": "mtopt.optim.pub",
    "ClippyAdam": "mtopt.optim.clippy_adam",
    "UMM": "mtopt.optim.umm",
    "ClippyUMM": "mtopt.optim.umm",
    "AdaTaskUMM": "mtopt.optim.umm",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mtopt.optim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
