"""``multi-digits``: two scikit-learn 8×8 digits side by side — a small embedded real-data
multi-task set (a stand-in for MultiMNIST-style benchmarks; no download).

Each example is a left digit image and a right digit image from scikit-learn's bundled
``load_digits`` (1,797 images, pixel values 0–16), placed side by side into an 8×(16 − overlap)
image (with ``overlap > 0`` the right digit is shifted left and overlapping pixels take the
maximum, which entangles the tasks), scaled to [0, 1], optionally with Gaussian pixel noise,
and flattened into ``8·(16 − overlap)`` dense features. There are no categorical fields.

Tasks. mtopt's trainer and metrics are binary (BCE + AUC), so each digit's class becomes a
binary task:

- ``task: ge5`` (default): ``left_ge5`` = left digit ≥ 5, ``right_ge5`` = right digit ≥ 5;
- ``task: odd``: ``left_odd`` = left digit is odd, ``right_odd`` = right digit is odd.

Splits. The 1,797 source images are first split into disjoint pools (seeded permutation,
``pool_fractions`` default 0.6 / 0.2 / 0.2), so no source image appears in two splits; then each
split draws ``n_<split>`` (left, right) pairs with replacement from its own pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.data._util import check_options, check_split_name
from mtopt.data.base import SPLITS, Schema
from mtopt.data.memory import InMemoryDataset
from mtopt.errors import InputError

TASKS = {
    "ge5": (["left_ge5", "right_ge5"], lambda d: d >= 5),
    "odd": (["left_odd", "right_odd"], lambda d: d % 2 == 1),
}


class MultiDigits(InMemoryDataset):
    """Two-digit images from scikit-learn's digits with binary left / right tasks (module
    docstring). Digits: Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits, 1998,
    as bundled with scikit-learn."""

    #: a batch holds the model inputs and labels (``digits`` and ``source`` stay in ``arrays``)
    batch_keys = ("cat", "dense", "labels")

    def __init__(
        self,
        *,
        seed: int = 0,
        n_train: int = 20000,
        n_val: int = 4000,
        n_test: int = 4000,
        task: str = "ge5",
        overlap: int = 0,
        noise: float = 0.0,
        pool_fractions: Sequence[float] = (0.6, 0.2, 0.2),
    ) -> None:
        from sklearn.datasets import load_digits

        if task not in TASKS:
            raise InputError(f"data.task: unknown task {task!r} (known: {', '.join(TASKS)})")
        if int(overlap) != overlap or not 0 <= overlap <= 7:
            raise InputError(f"data.overlap: an integer in [0, 7], got {overlap!r}")
        if not noise >= 0:
            raise InputError(f"data.noise: must be >= 0, got {noise}")
        fr = [float(x) for x in pool_fractions]
        if len(fr) != 3 or any(x <= 0 for x in fr):
            raise InputError(f"data.pool_fractions: three positive numbers, got {pool_fractions}")
        sizes = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
        for name, size in sizes.items():
            if size < 0:
                raise InputError(f"data.n_{name}: must be >= 0, got {size}")
        digits = load_digits()
        images = digits.images.astype(np.float32) / 16.0  # [N, 8, 8]
        targets = digits.target.astype(np.int64)
        rng = np.random.default_rng([int(seed), 0, 0xD161])
        perm = rng.permutation(len(targets))
        cuts = np.cumsum(np.asarray(fr) / sum(fr) * len(targets)).round().astype(int)
        pools = dict(zip(SPLITS, np.split(perm, cuts[:2])))
        names, rule = TASKS[task]
        width = 16 - int(overlap)
        self._splits: dict[str, dict[str, np.ndarray]] = {}
        for sid, split in enumerate(SPLITS):
            r = np.random.default_rng([int(seed), 1 + sid, 0xD161])
            pool = pools[split]
            n = sizes[split]
            left = pool[r.integers(0, len(pool), n)]
            right = pool[r.integers(0, len(pool), n)]
            canvas = np.zeros((n, 8, width), dtype=np.float32)
            canvas[:, :, :8] = images[left]
            canvas[:, :, width - 8 :] = np.maximum(canvas[:, :, width - 8 :], images[right])
            if noise:
                canvas += r.normal(0.0, noise, canvas.shape).astype(np.float32)
            labels = np.stack([rule(targets[left]), rule(targets[right])], axis=1)
            self._splits[split] = {
                "cat": np.zeros((n, 0), dtype=np.int64),
                "dense": canvas.reshape(n, -1),
                "labels": labels.astype(np.float32),
                "digits": np.stack([targets[left], targets[right]], axis=1),
                "source": np.stack([left, right], axis=1),
            }
        self.schema = Schema(
            cat_cardinalities=[],
            n_dense=8 * width,
            task_names=list(names),
            extra={"dataset": "multi-digits", "task": task, "image_shape": [8, width]},
        )

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """In-memory arrays of ``split`` (``digits``: the two digit classes; ``source``: the
        indices of the two images in ``sklearn.datasets.load_digits()``)."""
        check_split_name(split)
        return self._splits[split]


_KNOWN = ["seed", "n_train", "n_val", "n_test", "task", "overlap", "noise", "pool_fractions"]


def build(**cfg: Any) -> MultiDigits:
    """Factory for the registry: ``data:`` options of a recipe."""
    check_options("multi-digits", cfg, _KNOWN)
    return MultiDigits(**cfg)
