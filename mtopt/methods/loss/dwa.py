"""DWA: Dynamic Weight Average.

Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, eq. 1.
Uses the optional :meth:`~mtopt.methods.base.Method.end_epoch` hook with ``window=None``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig
from mtopt.methods.checks import positive
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.models.base import MultiTaskModel


class DWA(LossWeightingMethod):
    """Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, eq. 1)::

        wᵢ(t) = n · exp(rᵢ(t−1)/T) / Σⱼ exp(rⱼ(t−1)/T),   rᵢ(t−1) = L̄ᵢ(t−1) / L̄ᵢ(t−2),

    objective ``Σ wᵢ Lᵢ``; ``w = 1`` until two averaging periods have been seen. ``T = 2``
    (paper). The paper averages over epochs; our default averages over sliding windows of
    ``window = 25`` steps (the "iteration window" of the Nash-MTL / FAMO code the PUB paper
    used for its baselines): ``L̄(t−1)`` is the mean of the last ``window`` steps, ``L̄(t−2)``
    of the ``window`` steps before. ``window=None`` uses epoch means as in the paper; the
    trainer must then call :meth:`end_epoch` at the end of each epoch.
    """

    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        temperature: float = 2.0,
        window: int | None = 25,
        seed: int = 0,
    ) -> None:
        super().__init__(model, optimizer, seed=seed)
        self.temperature = positive("temperature", temperature)
        if window is not None and (not isinstance(window, int) or window < 1):
            raise InputError(f"method.window: must be an integer ≥ 1 or null, got {window!r}")
        self.window = window
        self.history: deque[list[float]] = deque(maxlen=2 * window if window else 1)
        self.epoch_sum = np.zeros(self.n_tasks)
        self.epoch_count = 0
        self.epoch_means: list[list[float]] = []

    def current_weights(self) -> np.ndarray:
        """The weights for the next step (from the loss history so far)."""
        if self.window:
            if len(self.history) < 2 * self.window:
                return np.ones(self.n_tasks)
            h = np.asarray(self.history, dtype=np.float64)
            prev, last = h[: self.window].mean(0), h[self.window :].mean(0)
        else:
            if len(self.epoch_means) < 2:
                return np.ones(self.n_tasks)
            prev, last = map(np.asarray, self.epoch_means[-2:])
        r = last / np.maximum(prev, 1e-300)
        e = np.exp((r - r.max()) / self.temperature)
        return self.n_tasks * e / e.sum()

    def objective(self, ls: list[torch.Tensor]) -> tuple[torch.Tensor, list[float]]:
        w = self.current_weights().tolist()
        return sum(wi * li for wi, li in zip(w, ls)), w  # type: ignore[return-value]

    def after_step(self, ls: list[torch.Tensor]) -> None:
        vals = [float(x.detach()) for x in ls]
        if self.window:
            self.history.append(vals)
        else:
            self.epoch_sum += np.asarray(vals)
            self.epoch_count += 1

    def end_epoch(self) -> None:
        """Close an averaging period (only used with ``window=None``)."""
        if not self.window and self.epoch_count:
            self.epoch_means.append((self.epoch_sum / self.epoch_count).tolist())
            self.epoch_means = self.epoch_means[-2:]
            self.epoch_sum = np.zeros(self.n_tasks)
            self.epoch_count = 0

    def _extra_state(self) -> dict[str, Any]:
        return {
            "history": [list(h) for h in self.history],
            "epoch_sum": self.epoch_sum.tolist(),
            "epoch_count": self.epoch_count,
            "epoch_means": [list(m) for m in self.epoch_means],
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.history.clear()
        self.history.extend([list(h) for h in state["history"]])
        self.epoch_sum = np.asarray(state["epoch_sum"], dtype=np.float64)
        self.epoch_count = int(state["epoch_count"])
        self.epoch_means = [list(m) for m in state["epoch_means"]]


__all__ = ["DWA"]
