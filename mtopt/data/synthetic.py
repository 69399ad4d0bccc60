"""``synthetic-ranking``: an embedded, seeded CTR / CTCVR ranking dataset (no download).

Generative model (all drawn from ``seed``; see docs/data.md for the knobs):

1. A *world*: per categorical field ``j`` a table of latent value vectors ``E_j ∈ R^{V_j×k}``
   and a Zipf popularity law (``zipf``) over its ``V_j`` values; a projection ``P ∈ R^{F×k}`` of
   the ``F`` standard-normal dense features; optionally ``n_users`` users, each with a latent
   vector and a per-task bias (a personalised effect, for methods with a user gate).
2. A row's latent vector ``z = Σ_j E_j[c_j]/√C + P^T x (+ user_effect·U_u)``, standardised.
3. Per task ``i`` three unit directions ``w_i, u_i, v_i`` whose pairwise cosines across tasks
   all equal ``task_correlation`` — the angle construction of the MMoE paper (Ma et al., KDD
   2018, §4.2), applied to the linear part and to the interaction part — and the score
   ``s_i = t_i + nonlinearity·(sin(a₁t_i+b₁) + sin(a₂t_i+b₂) + (u_i·z)(v_i·z))``,
   ``t_i = w_i·z`` (the MMoE paper's sine terms plus a pairwise interaction, so that an MLP
   over the field embeddings is needed and MMoE / PLE / shared-bottom differ a little).
4. ``logit_i = signal·(ŝ_i + label_noise·ε_i) + b_i`` with ``ŝ_i`` the standardised score,
   ``ε_i ~ N(0, 1)`` per row (irreducible label noise on top of the Bernoulli draw), and the
   intercept ``b_i`` calibrated on a fixed sample so that the base rates hit their targets.
5. Labels: ``click ~ Bernoulli(σ(logit_0))`` with rate ``click_rate``; ``conversion =
   click · Bernoulli(σ(logit_1))`` — a CTCVR label, only possible after a click, with
   ``P(conversion | click) ≈ conversion_rate``. Extra tasks (``n_tasks > 2``) are further funnel
   stages (``extra_tasks: funnel``: stage k only after stage k−1, conditional rate
   ``extra_task_rate``) or independent correlated tasks (``extra_tasks: correlated``, marginal
   rate ``extra_task_rate``).

Loss-scale imbalance: the PUB paper (Yuan et al., ICDM 2024, §VI-B) observes a CTR loss ≈ 23×
the CTCVR loss on AliExpress. ``loss_ratio: 23`` sets the conversion rate so that the mean BCE of
the base-rate predictors, ``H(click_rate) / H(click_rate · conversion_rate)`` (H = binary entropy
in nats), equals 23 — it changes the CTCVR base rate, and with it the loss ratio seen in
training. ``schema.extra`` reports the nominal and realised rates and the entropy ratio.
``schema.funnel`` is (task 1, task 2): the evaluation reports the CVR AUC on clicked rows; with
``n_users > 0`` ``schema.group_key`` is ``"user"``: the group AUC is taken over users.

Splits ``train`` / ``val`` / ``test`` are drawn from independent streams of ``seed`` (changing
``n_train`` does not change the validation or test rows). All splits are materialised in memory
(100k rows × 8 fields take a few tens of milliseconds to generate).

The closed-form helpers (task directions, loss-ratio inversion, intercept calibration) live in
:mod:`mtopt.data.synthetic_maths`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.data._util import (
    binary_entropy,
    check_options,
    check_split_name,
)
from mtopt.data.base import Schema
from mtopt.data.memory import InMemoryDataset
from mtopt.data.synthetic_maths import (
    calibrate_intercept,
    conversion_rate_for_loss_ratio,
    correlated_directions,
    sigmoid,
)
from mtopt.errors import InputError

DEFAULT_CARDINALITIES = [1000, 500, 200, 100, 50, 20, 10, 5]

#: AliExpress-shaped preset (16 categorical fields, 63 dense features, the paper's ~23× loss
#: ratio). The real per-country vocabularies differ; pass ``cat_cardinalities`` to match one.
ALIEXPRESS_CARDINALITIES = [
    3, 4, 5, 8, 10, 20, 50, 100, 200, 500, 1000, 2000, 3000, 5000, 10000, 20000,
]  # fmt: skip

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "aliexpress": {
        "cat_cardinalities": ALIEXPRESS_CARDINALITIES,
        "n_dense": 63,
        "loss_ratio": 23.0,
    },
}

_CALIBRATION_ROWS = 20000


class SyntheticRanking(InMemoryDataset):
    """Seeded synthetic CTR / CTCVR ranking data (see the module docstring for the model).

    Task correlation follows the angle construction of Ma et al., "Modeling Task Relationships
    in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018, §4.2; the loss-ratio
    knob mimics the CTR/CTCVR imbalance reported by Yuan et al., "Parameter Update Balancing
    Algorithm for Multi-task Ranking Models in Recommendation Systems", ICDM 2024, §VI-B.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        n_train: int = 50000,
        n_val: int = 10000,
        n_test: int = 10000,
        cat_cardinalities: Sequence[int] | None = None,
        n_dense: int = 8,
        n_tasks: int = 2,
        task_names: Sequence[str] | None = None,
        extra_tasks: str = "funnel",
        task_correlation: float = 0.5,
        click_rate: float = 0.2,
        conversion_rate: float = 0.1,
        loss_ratio: float | None = None,
        extra_task_rate: float = 0.3,
        label_noise: float = 0.5,
        signal: float = 2.5,
        nonlinearity: float = 1.0,
        latent_dim: int = 16,
        n_users: int = 0,
        user_effect: float = 0.5,
        zipf: float = 1.05,
    ) -> None:
        self.seed = int(seed)
        self.sizes = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
        for name, size in self.sizes.items():
            if size < 0:
                raise InputError(f"data.n_{name}: must be >= 0, got {size}")
        cards = list(DEFAULT_CARDINALITIES if cat_cardinalities is None else cat_cardinalities)
        if any(int(c) != c or c < 1 for c in cards):
            raise InputError(f"data.cat_cardinalities: positive integers expected, got {cards}")
        self.cards = [int(c) for c in cards]
        self.n_dense = int(n_dense)
        if self.n_dense < 0:
            raise InputError(f"data.n_dense: must be >= 0, got {n_dense}")
        if not self.cards and self.n_dense == 0 and n_users <= 0:
            raise InputError("data: no inputs (cat_cardinalities empty, n_dense 0, n_users 0)")
        if int(n_tasks) != n_tasks or n_tasks < 2:
            raise InputError(f"data.n_tasks: must be an integer >= 2, got {n_tasks}")
        self.n_tasks = int(n_tasks)
        if extra_tasks not in ("funnel", "correlated"):
            raise InputError(
                f"data.extra_tasks: expected 'funnel' or 'correlated', got {extra_tasks!r}"
            )
        self.extra_tasks = extra_tasks
        if task_names is None:
            extra = "stage" if extra_tasks == "funnel" else "task"
            task_names = ["click", "conversion"] + [
                f"{extra}{i + 1}" for i in range(2, self.n_tasks)
            ]
        if len(task_names) != self.n_tasks or len(set(task_names)) != self.n_tasks:
            raise InputError(
                f"data.task_names: expected {self.n_tasks} distinct names, got {list(task_names)}"
            )
        low = -1.0 / (self.n_tasks - 1)
        if not low <= task_correlation <= 1.0:
            raise InputError(
                f"data.task_correlation: must lie in [{low:.3g}, 1] for {self.n_tasks} tasks "
                f"(pairwise cosines of {self.n_tasks} unit vectors), got {task_correlation}"
            )
        for name, rate in (
            ("click_rate", click_rate),
            ("conversion_rate", conversion_rate),
            ("extra_task_rate", extra_task_rate),
        ):
            if not 0.0 < rate < 1.0:
                raise InputError(f"data.{name}: must lie in (0, 1), got {rate}")
        if loss_ratio is not None:
            conversion_rate = conversion_rate_for_loss_ratio(click_rate, float(loss_ratio))
        for name, value in (
            ("label_noise", label_noise),
            ("signal", signal),
            ("nonlinearity", nonlinearity),
            ("user_effect", user_effect),
            ("zipf", zipf),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"data.{name}: must be a finite number >= 0, got {value}")
        if int(n_users) != n_users or n_users < 0:
            raise InputError(f"data.n_users: must be an integer >= 0, got {n_users}")
        self.n_users = int(n_users)
        self.params = {
            "task_correlation": float(task_correlation),
            "click_rate": float(click_rate),
            "conversion_rate": float(conversion_rate),
            "loss_ratio": None if loss_ratio is None else float(loss_ratio),
            "extra_task_rate": float(extra_task_rate),
            "label_noise": float(label_noise),
            "signal": float(signal),
            "nonlinearity": float(nonlinearity),
            "latent_dim": int(latent_dim),
            "user_effect": float(user_effect),
            "zipf": float(zipf),
        }
        self._build_world()
        self._splits: dict[str, dict[str, np.ndarray | None]] = {}
        rates = self.nominal_rates()
        train = self.arrays("train")
        realised = train["labels"].mean(axis=0) if len(train["labels"]) else np.zeros(self.n_tasks)
        self.schema = Schema(
            cat_cardinalities=list(self.cards),
            n_dense=self.n_dense,
            task_names=list(task_names),
            n_users=self.n_users,
            extra={
                "dataset": "synthetic-ranking",
                "nominal_rates": dict(zip(task_names, rates)),
                "train_rates": {t: float(r) for t, r in zip(task_names, realised)},
                "entropy_ratio": binary_entropy(rates[0]) / max(binary_entropy(rates[1]), 1e-300),
                "conversion_rate": float(conversion_rate),
            },
            group_key="user" if self.n_users else None,  # GAUC over users
            funnel=(task_names[0], task_names[1]),  # task 2 is CTCVR: conversion after a click
        )

    # ------------------------------------------------------------------ world
    def nominal_rates(self) -> list[float]:
        """Target marginal positive rate of each task (funnel stages multiply)."""
        p = self.params
        rates = [p["click_rate"], p["click_rate"] * p["conversion_rate"]]
        for _ in range(2, self.n_tasks):
            if self.extra_tasks == "funnel":
                rates.append(rates[-1] * p["extra_task_rate"])
            else:
                rates.append(p["extra_task_rate"])
        return rates

    def _build_world(self) -> None:
        p = self.params
        rng = np.random.default_rng([self.seed, 0, 0x5EED])
        k = p["latent_dim"]
        if k < 1:
            raise InputError(f"data.latent_dim: must be >= 1, got {k}")
        self._tables = [rng.standard_normal((v, k)).astype(np.float32) for v in self.cards]
        self._cdfs = []
        for v in self.cards:
            weights = (np.arange(v, dtype=np.float64) + 1.0) ** (-p["zipf"])
            cdf = np.cumsum(weights)
            self._cdfs.append(cdf / cdf[-1])
        self._proj = (
            rng.standard_normal((self.n_dense, k)) / math.sqrt(max(self.n_dense, 1))
        ).astype(np.float32)
        if self.n_users:
            self._user_vec = rng.standard_normal((self.n_users, k)).astype(np.float32)
            self._user_bias = rng.standard_normal((self.n_users, self.n_tasks)).astype(np.float32)
            w = (np.arange(self.n_users, dtype=np.float64) + 1.0) ** (-p["zipf"])
            self._user_cdf = np.cumsum(w) / w.sum()
        n = self.n_tasks
        rho = p["task_correlation"]
        self._w = correlated_directions(n, k, rho, rng).astype(np.float32)
        self._u = correlated_directions(n, k, rho, rng).astype(np.float32)
        self._v = correlated_directions(n, k, rho, rng).astype(np.float32)
        self._wuv = np.ascontiguousarray(np.concatenate([self._w, self._u, self._v]).T)
        self._freq = rng.uniform(1.0, 3.0, size=2)
        self._phase = rng.uniform(0.0, 2.0 * math.pi, size=2)
        # calibration: standardisation of z and of the scores, then the intercepts
        self._z_mean = np.zeros(k, np.float32)
        self._z_std = np.ones(k, np.float32)
        self._s_mean = np.zeros(n, np.float32)
        self._s_std = np.ones(n, np.float32)
        self._bias = np.zeros(n)
        cal = self._draw_inputs(np.random.default_rng([self.seed, 0, 0xCA1]), _CALIBRATION_ROWS)
        z_raw = self._latent_raw(*cal)
        self._z_mean = z_raw.mean(axis=0)
        self._z_std = z_raw.std(axis=0) + 1e-6
        s = self._scores(self._latent(z_raw))
        self._s_mean = s.mean(axis=0)
        self._s_std = s.std(axis=0) + 1e-6
        noise = np.random.default_rng([self.seed, 0, 0xCA2]).standard_normal(s.shape)
        logit = self._logits_unbiased(s, noise, cal[2])
        rates = self.nominal_rates()
        weight = None
        for i in range(n):
            if i == 0 or self.extra_tasks == "correlated" and i >= 2:
                target, wgt = rates[i], None
            else:  # funnel stage: calibrate the conditional rate among the previous stage
                target = p["conversion_rate"] if i == 1 else p["extra_task_rate"]
                wgt = weight
            self._bias[i] = calibrate_intercept(logit[:, i], target, wgt)
            prob = sigmoid(logit[:, i] + self._bias[i])
            if i == 0:
                weight = prob
            elif i == 1 or self.extra_tasks == "funnel":
                weight = weight * prob

    def _draw_inputs(
        self, rng: np.random.Generator, rows: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        # field-major (C × rows) so that the per-field gathers read contiguous ids
        cat = np.empty((len(self.cards), rows), dtype=np.int64)
        for j, cdf in enumerate(self._cdfs):
            cat[j] = np.minimum(np.searchsorted(cdf, rng.random(rows)), len(cdf) - 1)
        dense = rng.standard_normal((rows, self.n_dense), dtype=np.float32)
        user = None
        if self.n_users:
            user = np.minimum(
                np.searchsorted(self._user_cdf, rng.random(rows)), self.n_users - 1
            ).astype(np.int64)
        return cat, dense, user

    def _latent_raw(
        self, cat: np.ndarray, dense: np.ndarray, user: np.ndarray | None
    ) -> np.ndarray:
        z = dense @ self._proj
        if self.cards:
            acc = np.zeros_like(z)
            for j, table in enumerate(self._tables):
                acc += np.take(table, cat[j], axis=0)
            z += acc / math.sqrt(len(self.cards))
        if user is not None:
            z += self.params["user_effect"] * self._user_vec[user]
        return z

    def _latent(self, z_raw: np.ndarray) -> np.ndarray:
        return (z_raw - self._z_mean) / self._z_std

    def _scores(self, z: np.ndarray) -> np.ndarray:
        """Unstandardised task scores ``s_i`` (see the module docstring), shape [rows, n]."""
        n = self.n_tasks
        proj = z @ self._wuv  # [rows, 3n]: t | u·z | v·z
        t = proj[:, :n]
        nl = self.params["nonlinearity"]
        s = t.astype(np.float64)
        if nl:
            wave = np.sin(self._freq[0] * t + self._phase[0])
            wave += np.sin(self._freq[1] * t + self._phase[1])
            s += nl * (wave + proj[:, n : 2 * n] * proj[:, 2 * n :])
        return s

    def _logits_unbiased(
        self, s: np.ndarray, noise: np.ndarray, user: np.ndarray | None
    ) -> np.ndarray:
        p = self.params
        s_hat = (s - self._s_mean) / self._s_std
        logit = p["signal"] * (s_hat + p["label_noise"] * noise)
        if user is not None:
            logit = logit + p["user_effect"] * self._user_bias[user]
        return logit

    # ------------------------------------------------------------------ rows
    def generate(self, rng: np.random.Generator, rows: int) -> dict[str, np.ndarray | None]:
        """``rows`` fresh rows from ``rng``: ``cat``, ``dense``, ``labels``, ``user``, and
        ``prob`` (the noise-free ``σ(logit)`` per task stage, for oracle checks)."""
        cat, dense, user = self._draw_inputs(rng, rows)
        s = self._scores(self._latent(self._latent_raw(cat, dense, user)))
        noise = rng.standard_normal(s.shape)
        logit = self._logits_unbiased(s, noise, user) + self._bias
        prob = sigmoid(logit)
        draws = rng.random(prob.shape) < prob
        labels = np.empty_like(draws)
        labels[:, 0] = draws[:, 0]
        for i in range(1, self.n_tasks):
            if i == 1 or self.extra_tasks == "funnel":
                labels[:, i] = labels[:, i - 1] & draws[:, i]
            else:
                labels[:, i] = draws[:, i]
        clean = sigmoid(self._logits_unbiased(s, np.zeros_like(s), user) + self._bias)
        return {
            "cat": np.ascontiguousarray(cat.T),
            "dense": dense,
            "labels": labels.astype(np.float32),
            "user": user,
            "prob": clean.astype(np.float32),
        }

    def arrays(self, split: str) -> dict[str, np.ndarray | None]:
        """The materialised arrays of ``split`` (generated once, then cached)."""
        sid = check_split_name(split)
        if split not in self._splits:
            rng = np.random.default_rng([self.seed, 1 + sid, 0xDA7A])
            self._splits[split] = self.generate(rng, self.sizes[split])
        return self._splits[split]

    def num_rows(self, split: str) -> int | None:
        check_split_name(split)
        return self.sizes[split]


_KNOWN = [
    "seed", "n_train", "n_val", "n_test", "cat_cardinalities", "n_dense", "n_tasks",
    "task_names", "extra_tasks", "task_correlation", "click_rate", "conversion_rate",
    "loss_ratio", "extra_task_rate", "label_noise", "signal", "nonlinearity", "latent_dim",
    "n_users", "user_effect", "zipf",
]  # fmt: skip


def build(**cfg: Any) -> SyntheticRanking:
    """Factory for the registry: ``data:`` options of a recipe (``preset`` applies first)."""
    preset = cfg.pop("preset", None) or "default"
    if preset not in PRESETS:
        raise InputError(f"data.preset: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    check_options("synthetic-ranking", cfg, _KNOWN)
    merged = {**PRESETS[preset], **cfg}
    return SyntheticRanking(**merged)
