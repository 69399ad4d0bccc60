"""Training pipeline: trainer loop, metrics, checkpoints, logs and plots (``mtopt train``).

``from mtopt.train import train, Trainer`` (imported lazily: torch loads on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Trainer", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mtopt.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'mtopt.train' has no attribute {name!r}")
