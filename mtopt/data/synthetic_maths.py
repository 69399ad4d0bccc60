"""The closed-form pieces of the ``synthetic-ranking`` generator (:mod:`mtopt.data.synthetic`):
task directions with a given pairwise cosine, the conversion rate that gives a CTR/CTCVR loss
ratio, and the intercept calibration. Pure numpy, no dataset state."""

from __future__ import annotations

import numpy as np

from mtopt.data._util import binary_entropy
from mtopt.errors import InputError

__all__ = [
    "calibrate_intercept",
    "conversion_rate_for_loss_ratio",
    "correlated_directions",
    "sigmoid",
]


def correlated_directions(n: int, k: int, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors in ``R^k`` with every pairwise cosine equal to ``cosine``.

    Factor the target Gram matrix ``C = (1−ρ)I + ρ11ᵀ`` (PSD iff ``−1/(n−1) ≤ ρ ≤ 1``) as
    ``LLᵀ`` and rotate the rows of ``L`` into a random orthonormal basis of ``R^k`` — the
    MMoE paper's construction for two tasks, generalised to n.
    """
    if k < n:
        raise InputError(f"data.latent_dim: must be at least n_tasks={n}, got {k}")
    gram = (1.0 - cosine) * np.eye(n) + cosine * np.ones((n, n))
    evals, evecs = np.linalg.eigh(gram)
    factor = evecs * np.sqrt(np.clip(evals, 0.0, None))  # rows l_i, l_i·l_j = C_ij
    basis, _ = np.linalg.qr(rng.standard_normal((k, k)))
    w = factor @ basis[:, :n].T  # [n, k]
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def conversion_rate_for_loss_ratio(click_rate: float, loss_ratio: float) -> float:
    """``P(conversion | click)`` such that ``H(click_rate) / H(click_rate·r) = loss_ratio``."""
    if not loss_ratio > 1.0:
        raise InputError(f"data.loss_ratio: must be > 1 (CTR loss / CTCVR loss), got {loss_ratio}")
    target = binary_entropy(click_rate) / loss_ratio
    lo, hi = 0.0, min(click_rate, 0.5)  # H is increasing on (0, 0.5]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if binary_entropy(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) / click_rate


def calibrate_intercept(logit: np.ndarray, rate: float, weight: np.ndarray | None) -> float:
    """Intercept ``b`` with ``Σ w σ(logit + b) / Σ w = rate`` (bisection; monotone in b)."""
    w = np.ones_like(logit) if weight is None else weight
    wsum = float(w.sum())
    lo, hi = -60.0, 60.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        mean = float((w / (1.0 + np.exp(-(logit + mid)))).sum()) / wsum
        if mean < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + e^{-x})``, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))
