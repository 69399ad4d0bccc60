"""Optimizers: PUB (Parameter Update Balancing), its base rules and UMMs, and the standalone
ClippyAdam / AdaTask baselines.

Pieces (optax-like, explicit state): :mod:`~mtopt.optim.balance` (G → α policy),
:mod:`~mtopt.optim.grads` (per-task gradients), :mod:`~mtopt.optim.rows` (row-wise tables),
:mod:`~mtopt.optim.rules` (base rules), :mod:`~mtopt.optim.umm` (UMMs),
:mod:`~mtopt.optim.diagnostics`; :mod:`~mtopt.optim.multitask` composes them into
:class:`MultiTaskUpdate`, of which :mod:`~mtopt.optim.pub` builds ``PUB`` and ``AdaTask``.

Importing :mod:`mtopt.optim` is cheap (no torch); the classes load on first attribute access::

    from mtopt.optim import PUB
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PUB": "mtopt.optim.pub",
    "AdaTask": "mtopt.optim.pub",
    "MultiTaskUpdate": "mtopt.optim.multitask",
    "Balance": "mtopt.optim.balance",
    "BalancePolicy": "mtopt.optim.balance",
    "BalanceRecord": "mtopt.optim.balance",
    "gram64": "mtopt.optim.balance",
    "RowTables": "mtopt.optim.rows",
    "LastStep": "mtopt.optim.diagnostics",
    "diff_metric": "mtopt.optim.diagnostics",
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
