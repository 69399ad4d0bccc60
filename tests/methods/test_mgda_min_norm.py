"""MGDA's exact min-norm solver against an independent brute-force reference.

The reference enumerates every support set S of the simplex, takes the min-norm point of the
affine hull of {gᵢ : i ∈ S} by least squares on the gradients themselves (not on the Gram
matrix), keeps the feasible ones (all affine weights ≥ 0) and returns the smallest point. It
shares no code with :func:`min_norm_exact` (Wolfe's algorithm on ``G``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mtopt.methods.aggregators.mgda import min_norm_exact


def _affine_min_norm_ls(P: np.ndarray) -> np.ndarray:
    """Affine weights (Σ = 1) of the min-norm point of the affine hull of the rows of ``P``."""
    if P.shape[0] == 1:
        return np.ones(1)
    base = P[-1]
    t = np.linalg.lstsq((P[:-1] - base).T, -base, rcond=None)[0]
    return np.append(t, 1.0 - t.sum())


def brute_force_min_norm(J: np.ndarray) -> np.ndarray:
    """The min-norm point of conv{rows of J} by enumerating the supports (n ≤ 12)."""
    n = J.shape[0]
    best_v, best_x = np.inf, None
    for r in range(1, n + 1):
        for S in itertools.combinations(range(n), r):
            mu = _affine_min_norm_ls(J[list(S)])
            if np.any(mu < -1e-12):
                continue
            w = np.zeros(n)
            w[list(S)] = np.clip(mu, 0.0, None)
            x = (w / w.sum()) @ J
            v = float(x @ x)
            if v < best_v:
                best_v, best_x = v, x
    assert best_x is not None
    return best_x


def _relative_error(J: np.ndarray) -> float:
    w = min_norm_exact(J @ J.T)
    assert np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-12
    x, ref = w @ J, brute_force_min_norm(J)
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def _spread_gradients(n: int, d: int, lo: float, hi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return U * np.logspace(np.log10(lo), np.log10(hi), n)[:, None]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_norm_exact_ten_tasks_norms_1e_minus4_to_1e4(seed: int) -> None:
    # norms spanning eight orders of magnitude: the stopping rule must be relative to the
    # answer (‖x‖²), not to the largest ‖gᵢ‖²
    J = _spread_gradients(10, 12, 1e-4, 1e4, seed)
    assert _relative_error(J) < 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_min_norm_exact_random_cases(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 8))
    d = n + int(rng.integers(0, 6))
    J = rng.standard_normal((n, d)) * np.exp(rng.uniform(-3, 3, size=(n, 1)))
    assert _relative_error(J) < 1e-6
