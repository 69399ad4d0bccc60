"""A small CSV in the AliExpress schema, for tests and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.io import atomic_write


def write_synthetic_aliexpress_csv(
    path: str | os.PathLike,
    rows: int,
    seed: int = 0,
    *,
    world_seed: int = 0,
    n_cat: int = 16,
    n_num: int = 63,
    loss_ratio: float | None = 23.0,
    chunk: int = 50000,
    impressions_per_search: int = 1,
) -> Path:
    """Write ``rows`` rows of learnable synthetic data in the AliExpress CSV schema.

    Rows come from :class:`~mtopt.data.synthetic.SyntheticRanking` with the ``aliexpress``
    preset (``n_cat`` categorical fields, ``n_num`` dense features, click and conversion =
    CTCVR labels; ``loss_ratio`` as in that dataset, ``None`` for its default 10 % conversion
    rate after a click). ``world_seed`` fixes the generative model and ``seed`` the rows, so a
    ``train.csv`` (seed 0) and a ``test.csv`` (seed 1) written with the same ``world_seed``
    share the signal. ``search_id`` is the row index divided by ``impressions_per_search``
    (consecutive rows form one search, for GAUC with ``group_column: search_id``). Written in
    chunks (bounded memory), atomically. For tests and benchmarks.
    """
    from mtopt.data.synthetic import ALIEXPRESS_CARDINALITIES, SyntheticRanking

    cards = (ALIEXPRESS_CARDINALITIES * (n_cat // 16 + 1))[:n_cat]
    gen = SyntheticRanking(
        seed=world_seed,
        n_train=0,
        n_val=0,
        n_test=0,
        cat_cardinalities=cards,
        n_dense=n_num,
        loss_ratio=loss_ratio,
    )
    header = (
        ["search_id"]
        + [f"categorical_{i + 1}" for i in range(n_cat)]
        + [f"numerical_{i + 1}" for i in range(n_num)]
        + ["click", "conversion"]
    )
    fmt = ["%d"] * (1 + n_cat) + ["%.6g"] * n_num + ["%d", "%d"]

    def writer(fh: Any) -> None:
        fh.write(",".join(header) + "\n")
        done = 0
        part = 0
        while done < rows:
            m = min(chunk, rows - done)
            rng = np.random.default_rng([int(seed), part, 0xA11])
            a = gen.generate(rng, m)
            table = np.concatenate(
                [
                    (np.arange(done, done + m) // int(impressions_per_search)).astype(np.float64)[
                        :, None
                    ],
                    a["cat"].astype(np.float64),
                    a["dense"].astype(np.float64),
                    a["labels"].astype(np.float64),
                ],
                axis=1,
            )
            np.savetxt(fh, table, fmt=fmt, delimiter=",")
            done += m
            part += 1

    return atomic_write(path, writer)
