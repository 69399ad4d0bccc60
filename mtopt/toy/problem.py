"""The toy problem itself: its losses and their analytic gradients, the Pareto set and distances
in loss space (derivations in the :mod:`mtopt.toy` docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

#: scale of the first loss (Nash-MTL's variant of the CAGrad toy)
SCALE = 0.1
#: lower clamp inside the logarithms of the toy
LOWER = 5e-6


def toy_losses(x: Any, scale: float = SCALE) -> np.ndarray:
    """``[..., 2]`` losses ``(L₁, L₂)`` at points ``x`` (``[..., 2]``), float64 numpy."""
    x = np.asarray(x, dtype=np.float64)
    u, y = x[..., 0], x[..., 1]
    T = np.tanh(-y)
    h1 = np.log(np.maximum(np.abs(0.5 * (-u - 7.0) - T), LOWER)) + 6.0
    h2 = np.log(np.maximum(np.abs(0.5 * (-u + 3.0) + T + 2.0), LOWER)) + 6.0
    c1 = np.maximum(np.tanh(0.5 * y), 0.0)
    c2 = np.maximum(np.tanh(-0.5 * y), 0.0)
    r = 0.1 * (y + 8.0) ** 2
    q1 = ((u - 7.0) ** 2 + r) / 10.0 - 20.0
    q2 = ((u + 7.0) ** 2 + r) / 10.0 - 20.0
    return np.stack([scale * (h1 * c1 + q1 * c2), h2 * c1 + q2 * c2], axis=-1)


def value_and_grad(u: float, y: float, scale: float = SCALE) -> tuple[float, ...]:
    """``(L₁, L₂, ∂L₁/∂u, ∂L₁/∂y, ∂L₂/∂u, ∂L₂/∂y)`` at one point, in float64.

    Subgradients follow torch's conventions for the formula (``clamp`` passes the gradient at
    its bound, ``|p|`` has gradient 0 at 0), so that the start ``(0, 0)`` moves as in the
    authors' runs.
    """
    ty = math.tanh(y)
    sech2 = 1.0 - ty * ty
    p1 = -0.5 * u - 3.5 + ty  # ½(−u−7) − tanh(−y)
    p2 = -0.5 * u + 3.5 - ty  # ½(−u+3) + tanh(−y) + 2
    a1, a2 = abs(p1), abs(p2)
    h1 = math.log(max(a1, LOWER)) + 6.0
    h2 = math.log(max(a2, LOWER)) + 6.0
    k1 = 1.0 / p1 if a1 >= LOWER and p1 != 0.0 else 0.0  # d log|p| / dp
    k2 = 1.0 / p2 if a2 >= LOWER and p2 != 0.0 else 0.0
    h1u, h1y = -0.5 * k1, sech2 * k1
    h2u, h2y = -0.5 * k2, -sech2 * k2
    th = math.tanh(0.5 * y)
    dth = 0.5 * (1.0 - th * th)
    c1, c1y = (th, dth) if th >= 0.0 else (0.0, 0.0)
    c2, c2y = (-th, -dth) if -th >= 0.0 else (0.0, 0.0)
    ry = 0.1 * (y + 8.0) ** 2
    q1 = ((u - 7.0) ** 2 + ry) / 10.0 - 20.0
    q2 = ((u + 7.0) ** 2 + ry) / 10.0 - 20.0
    qy = 0.02 * (y + 8.0)
    f1 = scale * (h1 * c1 + q1 * c2)
    f2 = h2 * c1 + q2 * c2
    g1u = scale * (h1u * c1 + 0.2 * (u - 7.0) * c2)
    g1y = scale * (h1y * c1 + h1 * c1y + qy * c2 + q1 * c2y)
    g2u = h2u * c1 + 0.2 * (u + 7.0) * c2
    g2y = h2y * c1 + h2 * c1y + qy * c2 + q2 * c2y
    return f1, f2, g1u, g1y, g2u, g2y


# ---------------------------------------------------------------------------- Pareto front
def _dphi(y: np.ndarray, A: np.ndarray) -> np.ndarray:
    """``φ_w′(y)`` for ``φ_w(y) = t(y)(A + r(y))`` (module docstring)."""
    t = np.tanh(-0.5 * y)
    return -0.5 * (1.0 - t * t) * (A + 0.01 * (y + 8.0) ** 2) + t * 0.02 * (y + 8.0)


def pareto_y(w: Any) -> np.ndarray:
    """``y*(w)``: the root of ``φ_w′`` in ``[−30, −1]`` (bisection in float64, to round-off)."""
    w = np.asarray(w, dtype=np.float64)
    A = 19.6 * w * (1.0 - w) - 20.0
    lo = np.full(w.shape, -30.0)  # φ' < 0 here
    hi = np.full(w.shape, -1.0)  # φ' > 0 here
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        neg = _dphi(mid, A) < 0.0
        lo = np.where(neg, mid, lo)
        hi = np.where(neg, hi, mid)
    return 0.5 * (lo + hi)


def pareto_points(w: Any) -> np.ndarray:
    """Points ``(14w − 7, y*(w))`` of the Pareto set, ``[..., 2]``."""
    w = np.asarray(w, dtype=np.float64)
    return np.stack([14.0 * w - 7.0, pareto_y(w)], axis=-1)


@dataclass
class ParetoFront:
    """The Pareto set sampled at weights ``w`` (parameter space) and its image (loss space)."""

    w: np.ndarray
    points: np.ndarray
    losses: np.ndarray


def pareto_front(n: int = 2001, scale: float = SCALE) -> ParetoFront:
    """``n`` points of the Pareto set, evenly spaced in ``w ∈ [0, 1]`` (``u = 14w − 7``)."""
    w = np.linspace(0.0, 1.0, int(n))
    pts = pareto_points(w)
    return ParetoFront(w=w, points=pts, losses=toy_losses(pts, scale))


@lru_cache(maxsize=4)
def _dense_front(scale: float) -> ParetoFront:
    return pareto_front(20001, scale)


def balanced_point(scale: float = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """``(x*, L*)``: the Pareto point with ``u = 0`` (w = ½), our reading of Fig. 2's star."""
    p = pareto_points(0.5)
    return p, toy_losses(p, scale)


def distance_to_front(losses: Any, scale: float = SCALE) -> tuple[float, float, np.ndarray]:
    """``(distance, w, nearest)``: Euclidean distance in loss space from ``losses`` (2,) to the
    Pareto front, the weight ``w`` of the nearest front point and that point's losses.

    Nearest of 20001 front samples, refined by projecting on the two adjacent chords; the
    nearest point is then recomputed exactly at the interpolated ``w`` (error ~1e-6).
    """
    p = np.asarray(losses, dtype=np.float64).reshape(2)
    front = _dense_front(float(scale))
    F, W = front.losses, front.w
    k = int(np.argmin(np.sum((F - p) ** 2, axis=1)))
    best_w, best_d = float(W[k]), math.inf
    for j in (k - 1, k):
        if j < 0 or j + 1 >= len(W):
            continue
        a, ab = F[j], F[j + 1] - F[j]
        t = min(max(float((p - a) @ ab) / max(float(ab @ ab), 1e-300), 0.0), 1.0)
        d = float(np.linalg.norm(a + t * ab - p))
        if d < best_d:
            best_d, best_w = d, float(W[j] + t * (W[j + 1] - W[j]))
    near = toy_losses(pareto_points(best_w), scale)
    return float(np.linalg.norm(near - p)), best_w, near
