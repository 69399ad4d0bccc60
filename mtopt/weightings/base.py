"""The weighting interface: a Gram matrix ``G`` (float64, n×n) → task weights ``α``.

torchjd's split (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024,
Sec. 2): most multi-task methods are an *aggregation* ``Jᵀα`` of a task Jacobian ``J`` (rows:
the task gradients, or PUB's per-task updates) whose weights ``α`` depend on ``J`` only through
its Gramian ``G = J Jᵀ``. A :class:`Weighting` is that map, numpy only, so the same object
weights gradients (:mod:`mtopt.methods.grad`) and updates (:class:`mtopt.optim.PUB`,
``weighting=...``). One file per weighting in this package.

Every call returns a :class:`WeightingResult`: α (None when the weighting has no answer on this
``G``, e.g. FairGrad's equation without a positive solution), a status (``ok``, or a reason),
a certificate residual of the weighting's own optimality condition and plain-number ``info``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtopt.errors import InputError


@dataclass
class WeightingResult:
    """What one :meth:`Weighting.__call__` gave."""

    #: the weights (float64, n), or None when there is none (status says why)
    alpha: np.ndarray | None
    #: ``ok``, or why α is missing / not certified (``not_converged``, ``degenerate``, …)
    status: str = "ok"
    #: the weighting's own optimality residual on the G it saw (None where not defined)
    residual: float | None = None
    seconds: float = 0.0
    iterations: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.alpha is not None


def check_gram(G: Any) -> np.ndarray:
    """``G`` as a float64 n×n symmetric finite array (``InputError`` naming ``G`` otherwise)."""
    try:
        A = np.asarray(G, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"G: expected a square float matrix, got {type(G).__name__}") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise InputError(f"G: expected a square n×n matrix with n ≥ 1, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise InputError("G: contains NaN or Inf")
    return 0.5 * (A + A.T)


class Weighting:
    """``G → α``. Subclasses implement :meth:`weights` on a checked float64 ``G``.

    Attributes a caller may read: :attr:`name`; :attr:`scale_invariant` (α is unchanged when
    ``G`` is multiplied by a positive constant, so PUB's ``alpha_scale`` only matters for the
    others); :attr:`simplex` (α ≥ 0 with Σα = 1 by construction).
    """

    name: str = ""
    scale_invariant: bool = True
    simplex: bool = False

    def weights(self, G: np.ndarray) -> WeightingResult:
        raise NotImplementedError

    def __call__(self, G: Any) -> WeightingResult:
        A = check_gram(G)
        t0 = time.perf_counter()
        res = self.weights(A)
        res.seconds = time.perf_counter() - t0
        if res.alpha is not None:
            res.alpha = np.asarray(res.alpha, dtype=np.float64)
            if not np.all(np.isfinite(res.alpha)):
                res.alpha, res.status = None, "nonfinite"
        return res

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def finite_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (≥ 0 with ``allow_zero``); InputError naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise InputError(f"{name}: must be a finite number {bound}, got {value!r}")
    return v


__all__ = ["Weighting", "WeightingResult", "check_gram", "finite_positive"]
