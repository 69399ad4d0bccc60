"""MGDA: the minimum-norm point of the convex hull of the task gradients.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, eq. (3)
(after Désidéri, C. R. Math. 2012)::

    min_{w ∈ Δ}  ‖ Σᵢ wᵢ gᵢ ‖²  =  min_{w ∈ Δ} wᵀ G w,      Δ = {w ≥ 0, Σ w = 1}

Only the Gram matrix ``G`` is needed. Two solvers:

* ``"exact"`` (default): Wolfe's minimum-norm-point algorithm (Wolfe, Math. Programming 1976)
  on ``G``: an active-set method that terminates finitely with the exact minimiser (to float64
  round-off). Same problem as the paper's, solved to optimality.
* ``"frank_wolfe"``: the paper's Algorithm 2 (Frank-Wolfe with the exact line search of its
  Algorithm 1), with the authors' code's limits (250 iterations, stop when the weights move by
  less than 1e-5 in ℓ₁).

Normalisation (authors' code ``gradient_normalizers``; not in the paper's algorithm): the
weights are *solved* on ``gᵢ/nᵢ`` with ``nᵢ`` = 1 (``none``, default), ``‖gᵢ‖`` (``l2``),
``Lᵢ`` (``loss``) or ``Lᵢ‖gᵢ‖`` (``loss+``, the authors' example configs), and then *applied to
the raw* gradients, as the authors' code applies them to the raw losses.

Output scaling: ``d = Σᵢ wᵢ gᵢ`` with ``w`` on the simplex (Σ w = 1): with ``none`` this is the
min-norm point itself, ``‖d‖² = min wᵀGw``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.aggregators.base import Aggregator, as_weights
from mtopt.methods.checks import check_losses
from mtopt.methods.linalg import combine, gram64
from mtopt.weightings.mgda import min_norm_exact

NORMALIZATIONS = ("none", "l2", "loss", "loss+")
SOLVERS = ("exact", "frank_wolfe")

__all__ = ["MGDA", "min_norm_exact", "min_norm_frank_wolfe"]


def min_norm_frank_wolfe(
    G: np.ndarray, max_iter: int = 250, stop_crit: float = 1e-5
) -> tuple[np.ndarray, int]:
    """The paper's Algorithm 2 on ``G`` (Frank-Wolfe, exact line search of Algorithm 1)."""
    n = G.shape[0]
    w = np.full(n, 1.0 / n)
    it = 0
    while it < max_iter:
        it += 1
        Gw = G @ w
        t = int(np.argmin(Gw))
        xx, xg, gg = float(w @ Gw), float(Gw[t]), float(G[t, t])
        # Algorithm 1: min over γ ∈ [0, 1] of ‖(1 − γ) x + γ g_t‖²
        if xg >= xx:
            gamma = 0.0
        elif xg >= gg:
            gamma = 1.0
        else:
            gamma = (xx - xg) / (xx + gg - 2.0 * xg)
        new = (1.0 - gamma) * w
        new[t] += gamma
        change = float(np.abs(new - w).sum())
        w = new
        if change < stop_crit:
            break
    return w, it


class MGDA(Aggregator):
    """MGDA (Sener & Koltun, NeurIPS 2018, eq. 3 / Algorithm 2): min-norm convex combination.

    Args:
        normalization: ``none`` (default) | ``l2`` | ``loss`` | ``loss+`` (see module docstring;
            the loss-based ones need ``losses=``).
        solver: ``exact`` (Wolfe's algorithm, default) or ``frank_wolfe`` (paper Algorithm 2).
        max_iter, stop_crit: Frank-Wolfe limits (authors' code: 250, 1e-5).

    Returns ``(Σ wᵢ gᵢ, w)`` with ``w`` on the simplex.
    """

    name = "mgda"
    has_weights = True

    def __init__(
        self,
        normalization: str = "none",
        solver: str = "exact",
        max_iter: int = 250,
        stop_crit: float = 1e-5,
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise InputError(
                f"method.normalization: unknown {normalization!r} "
                f"(known: {', '.join(NORMALIZATIONS)})"
            )
        if solver not in SOLVERS:
            raise InputError(f"method.solver: unknown {solver!r} (known: {', '.join(SOLVERS)})")
        if int(max_iter) < 1 or not stop_crit > 0:
            raise InputError("method.max_iter / method.stop_crit: must be positive")
        self.normalization = normalization
        self.solver = solver
        self.max_iter = int(max_iter)
        self.stop_crit = float(stop_crit)

    def weights_from_gram(self, G: np.ndarray, losses: Any = None) -> np.ndarray:
        """Simplex weights for the Gram matrix ``G`` (after the configured normalisation)."""
        n = G.shape[0]
        norms = np.ones(n)
        if self.normalization in ("l2", "loss+"):
            norms = norms * np.sqrt(np.clip(np.diag(G), 0.0, None))
        if self.normalization in ("loss", "loss+"):
            norms = norms * check_losses(losses, n, "method.normalization", values=True)
        norms = np.where(norms > 0, norms, 1.0)
        Gn = G / np.outer(norms, norms)
        if self.solver == "exact":
            w = min_norm_exact(Gn)
            self.last_info["iterations"] = 0
        else:
            w, it = min_norm_frank_wolfe(Gn, self.max_iter, self.stop_crit)
            self.last_info["iterations"] = it
        self.last_info["min_norm_sq"] = float(w @ Gn @ w)
        return w

    def aggregate(
        self, J: torch.Tensor, *, generator: torch.Generator | None = None, losses: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        G = gram64(J)
        w = self.weights_from_gram(G, losses)
        return combine(w, J), as_weights(w, J)
