"""synthetic-ranking: determinism, schema, funnel structure, knobs, bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mtopt.data.synthetic import (
    SyntheticRanking,
    build,
    conversion_rate_for_loss_ratio,
    correlated_directions,
)
from mtopt.errors import InputError
from mtopt.registry import registry

SMALL = dict(n_train=3000, n_val=500, n_test=500)


def _entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def _rows(batches) -> np.ndarray:
    """All rows of an iterator of batches as one array (cat | dense | labels)."""
    out = [
        torch.cat([b["cat"].double(), b["dense"].double(), b["labels"].double()], 1)
        for b in batches
    ]
    return torch.cat(out).numpy()


def test_registered_and_same_seed_same_data() -> None:
    a = registry.get("dataset", "synthetic-ranking")(**SMALL, seed=3)
    b = build(**SMALL, seed=3)
    c = build(**SMALL, seed=4)
    for split in ("train", "val", "test"):
        for key in ("cat", "dense", "labels"):
            np.testing.assert_array_equal(a.arrays(split)[key], b.arrays(split)[key])
    assert not np.array_equal(a.arrays("train")["dense"], c.arrays("train")["dense"])


def test_batches_deterministic_and_a_permutation() -> None:
    ds = build(**SMALL)
    plain = _rows(ds.batches("train", 256))
    one = _rows(ds.batches("train", 256, shuffle=True, seed=1, epoch=0))
    again = _rows(ds.batches("train", 256, shuffle=True, seed=1, epoch=0))
    other_epoch = _rows(ds.batches("train", 256, shuffle=True, seed=1, epoch=1))
    np.testing.assert_array_equal(one, again)
    assert not np.array_equal(one, other_epoch)
    assert not np.array_equal(one, plain)
    # every row exactly once: same multiset as the unshuffled order
    key = np.lexsort(plain.T)
    np.testing.assert_array_equal(plain[key], one[np.lexsort(one.T)])
    np.testing.assert_array_equal(plain[key], other_epoch[np.lexsort(other_epoch.T)])


def test_batch_format_and_funnel() -> None:
    ds = build(**SMALL, n_users=50, n_tasks=3)
    s = ds.schema
    assert s.task_names == ["click", "conversion", "stage3"] and s.n_users == 50
    batches = list(ds.batches("val", 128))
    assert [len(b["labels"]) for b in batches] == [128, 128, 128, 116]
    for b in batches:
        assert b["cat"].dtype == torch.int64 and b["cat"].shape[1] == len(s.cat_cardinalities)
        assert b["dense"].dtype == torch.float32 and b["dense"].shape[1] == s.n_dense
        assert b["labels"].dtype == torch.float32 and b["labels"].shape[1] == 3
        assert b["user"].dtype == torch.int64
        assert (b["cat"] >= 0).all() and (b["cat"] < torch.tensor(s.cat_cardinalities)).all()
        assert ((b["user"] >= 0) & (b["user"] < 50)).all()
        y = b["labels"]
        assert set(y.unique().tolist()) <= {0.0, 1.0}
        # funnel: a conversion only after a click, stage 3 only after a conversion
        assert (y[:, 1] <= y[:, 0]).all() and (y[:, 2] <= y[:, 1]).all()


def test_correlated_extra_tasks_are_not_a_funnel() -> None:
    ds = build(**SMALL, n_tasks=3, extra_tasks="correlated", extra_task_rate=0.4)
    y = ds.arrays("train")["labels"]
    assert ds.schema.task_names == ["click", "conversion", "task3"]
    assert (y[:, 2] > y[:, 1]).any()  # task 3 positives without a conversion exist
    assert abs(y[:, 2].mean() - 0.4) < 0.05


def test_base_rates_hit_their_targets() -> None:
    ds = build(n_train=40000, n_val=0, n_test=0, click_rate=0.3, conversion_rate=0.2)
    y = ds.arrays("train")["labels"]
    n = len(y)
    ctr = y[:, 0].mean()
    cvr = y[:, 1].sum() / y[:, 0].sum()  # P(conversion | click)
    assert abs(ctr - 0.3) < 4 * math.sqrt(0.3 * 0.7 / n) + 0.01
    assert abs(cvr - 0.2) < 4 * math.sqrt(0.2 * 0.8 / y[:, 0].sum()) + 0.01


@pytest.mark.parametrize("ratio", [5.0, 23.0])
def test_loss_ratio_sets_the_entropy_ratio(ratio: float) -> None:
    r = conversion_rate_for_loss_ratio(0.2, ratio)
    assert _entropy(0.2) / _entropy(0.2 * r) == pytest.approx(ratio, rel=1e-9)
    ds = build(n_train=60000, n_val=0, n_test=0, loss_ratio=ratio)
    y = ds.arrays("train")["labels"].mean(axis=0)
    realised = _entropy(float(y[0])) / _entropy(float(y[1]))
    assert realised == pytest.approx(ratio, rel=0.15)
    assert ds.schema.extra["entropy_ratio"] == pytest.approx(ratio)
    # the constant-predictor BCE of each task is its entropy: the loss scale really changes
    bce = [
        torch.nn.functional.binary_cross_entropy(
            torch.full((len(y),), float(p)), torch.tensor([float(p)] * len(y))
        )
        for p in y
    ]
    assert float(bce[0] / bce[1]) == pytest.approx(realised, rel=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 6), k_extra=st.integers(0, 6), t=st.floats(0.0, 1.0), seed=st.integers(0, 99)
)
def test_correlated_directions_have_the_requested_cosines(
    n: int, k_extra: int, t: float, seed: int
) -> None:
    low = -1.0 / (n - 1)
    rho = low + t * (1.0 - low)
    w = correlated_directions(n, n + k_extra, rho, np.random.default_rng(seed))
    gram = w @ w.T
    np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-9)
    off = gram[~np.eye(n, dtype=bool)]
    np.testing.assert_allclose(off, rho, atol=1e-7)


def test_task_correlation_knob_moves_the_task_scores() -> None:
    corr = []
    for rho in (-0.9, 0.0, 0.9):
        ds = build(n_train=8000, n_val=0, n_test=0, task_correlation=rho, label_noise=0.0)
        p = ds.arrays("train")["prob"]
        corr.append(np.corrcoef(p[:, 0], p[:, 1])[0, 1])
    assert corr[0] < corr[1] < corr[2]


def test_label_noise_lowers_the_attainable_auc() -> None:
    aucs = []
    for noise in (0.0, 2.0):
        ds = build(n_train=20000, n_val=0, n_test=0, label_noise=noise)
        a = ds.arrays("train")
        aucs.append(roc_auc_score(a["labels"][:, 0], a["prob"][:, 0]))
    assert aucs[0] > aucs[1] + 0.05


def test_nonlinearity_zero_is_linear_in_the_latent_score() -> None:
    ds = build(n_train=10, n_val=0, n_test=0, nonlinearity=0.0)
    z = np.random.default_rng(0).standard_normal((50, 16))
    np.testing.assert_allclose(ds._scores(z), z @ ds._w.T.astype(np.float64), rtol=1e-5)


@pytest.mark.parametrize(
    "cfg, field",
    [
        ({"n_tasks": 1}, "n_tasks"),
        ({"task_correlation": -0.9, "n_tasks": 3}, "task_correlation"),
        ({"click_rate": 1.5}, "click_rate"),
        ({"loss_ratio": 0.5}, "loss_ratio"),
        ({"extra_tasks": "tree"}, "extra_tasks"),
        ({"task_names": ["a"]}, "task_names"),
        ({"cat_cardinalities": [0, 3]}, "cat_cardinalities"),
        ({"colour": 1}, "colour"),
        ({"preset": "nope"}, "preset"),
    ],
)
def test_bad_options_name_the_field(cfg: dict, field: str) -> None:
    with pytest.raises(InputError, match=f"data.{field}"):
        build(**SMALL, **cfg)


def test_aliexpress_preset_shape() -> None:
    ds = build(preset="aliexpress", n_train=2000, n_val=10, n_test=10)
    assert len(ds.schema.cat_cardinalities) == 16 and ds.schema.n_dense == 63
    assert ds.schema.extra["entropy_ratio"] == pytest.approx(23.0)


def test_empty_split_and_single_class_split_are_allowed() -> None:
    ds = SyntheticRanking(n_train=50, n_val=0, n_test=20, conversion_rate=0.001)
    assert list(ds.batches("val", 8)) == []
    y = torch.cat([b["labels"] for b in ds.batches("test", 8)])
    assert y[:, 1].sum() == 0  # one class only: must not crash anything here


def test_importing_the_data_package_does_not_import_torch() -> None:
    code = (
        "import sys, mtopt.data, mtopt.catalog, mtopt.data.synthetic, "
        "mtopt.data.aliexpress, mtopt.data.census, mtopt.data.digits; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
