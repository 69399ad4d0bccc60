"""UPGrad's weighting: the mean of each row's projection onto the dual cone of the rows.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (arXiv:2406.16232),
Sec. 3: ``A_UPGrad(J) = (1/n) Σᵢ π_J(Jᵀeᵢ)`` with ``π_J`` the projection onto the dual cone
``{x : Jx ≥ 0}``; by their Prop. 1 the projection of ``Jᵀu`` is ``Jᵀw`` for

    w ∈ argmin_{v ≥ u}  vᵀ G v          (G = JJᵀ, ≥ entrywise),

so UPGrad weights ``α = Σᵢ wᵢ*`` with ``wᵢ* = argmin_{v ≥ eᵢ/n} vᵀGv`` — a function of G only.

Each QP is solved exactly (finite active-set method): with ``v = u + z``, ``z ≥ 0`` and a square
root ``A = Λ^{1/2}Vᵀ`` of ``G = VΛVᵀ`` it is the non-negative least-squares problem
``min_{z ≥ 0} ‖Az + Au‖²`` (``scipy.optimize.nnls``, Lawson–Hanson). The residual is the KKT
violation of the n QPs: ``Gwᵢ ≥ 0``, ``wᵢ ≥ u``, ``(Gwᵢ)ⱼ (wᵢ − u)ⱼ = 0`` (relative to
``max Gᵢᵢ``).

Regularisation: the QPs are solved on ``Gᵣ = G/tr G + reg_eps·I`` (``reg_eps`` default 1e-4,
the value torchjd uses): it does not change the minimiser's scale, and it makes the weights
unique when G is singular (linearly dependent rows, e.g. ``g, −g``: without it any
``w`` with ``Jᵀw = 0`` is a minimiser and the solver may return huge weights). ``reg_eps = 0``
is the unregularised problem. The certificate is on ``Gᵣ``.

Scale (update level): ``Dα = (1/n) Σᵢ π(Δᵢ)``, the mean of the projected updates — about one
update long when the updates agree, ~√n shorter than Algorithm 1's ``‖Dα‖ = √n`` on the
Frobenius-scaled G. α ≥ 1/n entrywise; scale invariant.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from mtopt.weightings.base import Weighting, WeightingResult, finite_positive


def sqrt_gram(G: np.ndarray) -> np.ndarray:
    """``A`` with ``AᵀA = G`` (``Λ^{1/2}Vᵀ``, negative round-off eigenvalues clipped to 0)."""
    lam, V = np.linalg.eigh(G)
    return np.sqrt(np.clip(lam, 0.0, None))[:, None] * V.T


def regularized(G: np.ndarray, reg_eps: float) -> np.ndarray:
    """``G/tr G + reg_eps·I`` (``G`` itself when its trace is 0)."""
    tr = float(np.trace(G))
    A = G / tr if tr > 0 else G.copy()
    return A + reg_eps * np.eye(G.shape[0])


def project_weights(G: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Row k of the result: ``argmin_{v ≥ U[k]} vᵀGv`` (Quinton & Rey 2024, Prop. 1)."""
    out = np.array(U, dtype=np.float64, copy=True)
    if float(np.max(np.diag(G))) <= 0:
        return out
    As = sqrt_gram(G)
    for k, u in enumerate(out):
        z, _ = nnls(As, -(As @ u), maxiter=50 * len(u) + 100)
        out[k] = u + z
    return out


def kkt_residual(G: np.ndarray, W: np.ndarray, U: np.ndarray) -> float:
    """Worst KKT violation of ``min_{v ≥ u} vᵀGv`` over the rows (relative to max Gᵢᵢ)."""
    scale = float(np.max(np.diag(G)))
    if scale <= 0:
        return 0.0
    r = 0.0
    for w, u in zip(W, U):
        x = G @ w / scale
        slack = w - u
        r = max(r, float(np.max(-x)), float(np.max(-slack)), float(np.max(np.abs(x * slack))))
    return max(r, 0.0)


class UPGrad(Weighting):
    """UPGrad (Quinton & Rey 2024, Sec. 3 and Prop. 1): α = Σᵢ argmin_{v ≥ eᵢ/n} vᵀGv."""

    name = "upgrad"

    def __init__(self, reg_eps: float = 1e-4) -> None:
        self.reg_eps = finite_positive("reg_eps", reg_eps, allow_zero=True)

    def weights(self, G: np.ndarray) -> WeightingResult:
        n = G.shape[0]
        U = np.eye(n) / n
        A = regularized(G, self.reg_eps)
        W = project_weights(A, U)
        return WeightingResult(W.sum(axis=0), residual=kkt_residual(A, W, U))


__all__ = ["UPGrad", "kkt_residual", "project_weights", "regularized", "sqrt_gram"]
