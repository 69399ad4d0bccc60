"""Multi-task optimisation methods (registered in :mod:`mtopt.methods.catalog`).

``mtopt.methods.aggregate(name, grads, **hyperparameters)`` is the pure aggregation API of the
gradient-level methods (see :mod:`mtopt.methods.aggregators`). This package imports nothing
heavy at import time (the registry imports :mod:`mtopt.methods.catalog`), so ``aggregate`` is a
thin wrapper that imports torch on first call.
"""

from __future__ import annotations

from typing import Any


def aggregate(name: str, grads: Any, **hyperparameters: Any) -> tuple[Any, Any]:
    """``(vector, weights_or_None)`` for task gradients ``grads`` (``Tensor[n, d]``).

    See :func:`mtopt.methods.aggregators.aggregate` (``generator=`` for the stochastic
    methods pcgrad, graddrop and rlw; ``losses=`` for MGDA's loss-based normalisations).
    """
    from mtopt.methods.aggregators import aggregate as _aggregate

    return _aggregate(name, grads, **hyperparameters)


__all__ = ["aggregate"]
