"""Multi-task optimisation methods (the built-ins are rows of :mod:`mtopt.catalog`).

One method (or one small family) per module: :mod:`~mtopt.methods.ls`, the loss-level methods
in :mod:`mtopt.methods.loss`, the gradient-level methods in :mod:`mtopt.methods.grad` (their
pure forms in :mod:`mtopt.methods.aggregators`), the update-level ones in
:mod:`mtopt.methods.pub`, and :mod:`mtopt.methods.drgrad`; the contract is
:mod:`mtopt.methods.base`.

``mtopt.methods.aggregate(name, grads, **hyperparameters)`` is the pure aggregation API of the
gradient-level methods. This package imports nothing heavy at import time, so ``aggregate`` is
a thin wrapper that imports torch on first call.
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
