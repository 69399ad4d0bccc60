"""The ranking metrics against independent references: GAUC against a brute-force pair count per
group, NE against its textbook formula, the CVR AUC on clicked rows against a filter + pair
count."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtopt.train.ranking import base_rate_entropy, cvr_scores, gauc, group_aucs, normalized_entropy


def pair_auc(y: list[float], s: list[float]) -> float | None:
    """AUC by counting pairs: P(score of a positive > score of a negative), ties count 1/2."""
    pos = [b for a, b in zip(y, s) if a == 1]
    neg = [b for a, b in zip(y, s) if a == 0]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def brute_gauc(y, s, g) -> tuple[float | None, int, int]:
    """Σ_g n_g AUC_g / Σ_g n_g over the groups with both classes; (value, used, skipped)."""
    num = den = 0.0
    used = skipped = 0
    for grp in sorted(set(g)):
        idx = [i for i in range(len(g)) if g[i] == grp]
        a = pair_auc([y[i] for i in idx], [s[i] for i in idx])
        if a is None:
            skipped += 1
            continue
        used += 1
        num += len(idx) * a
        den += len(idx)
    return (num / den if used else None), used, skipped


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 5), st.integers(0, 4)),  # label, score, group
        min_size=1,
        max_size=80,
    )
)
def test_gauc_matches_brute_force_pair_count(rows: list[tuple[int, int, int]]) -> None:
    y = [float(a) for a, _, _ in rows]
    s = [b / 5 for _, b, _ in rows]  # few distinct scores: many ties inside groups
    g = [c * 1000 + 7 for _, _, c in rows]  # arbitrary (non-contiguous) group ids
    got = gauc(np.array(y), np.array(s), np.array(g))
    want, used, skipped = brute_gauc(y, s, g)
    assert (got.groups_used, got.groups_skipped) == (used, skipped)
    if want is None:
        assert got.value is None
    else:
        assert got.value == pytest.approx(want, abs=1e-12)


def test_group_aucs_per_group_and_single_class_groups() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500).astype(float)
    s = rng.normal(size=500).round(1)  # ties
    g = rng.integers(0, 30, 500)
    g[g == 5] = 6  # group 6 is larger
    y[g == 7] = 0.0  # group 7: one class, skipped
    rows, pos, auc = group_aucs(y, s, g)
    ids = np.unique(g)
    for k, grp in enumerate(ids):
        m = g == grp
        assert rows[k] == m.sum() and pos[k] == y[m].sum()
        want = pair_auc(list(y[m]), list(s[m]))
        if want is None:
            assert math.isnan(auc[k])
        else:
            assert auc[k] == pytest.approx(want, abs=1e-12)
    res = gauc(y, s, g)
    assert res.groups_skipped >= 1 and res.counts()["used"] == res.groups_used


def test_gauc_with_one_group_is_the_auc_and_none_without_two_classes() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(float)
    s = rng.random(200)
    assert gauc(y, s, np.zeros(200, int)).value == pytest.approx(pair_auc(list(y), list(s)))
    none = gauc(np.array([1.0, 0.0]), np.array([0.3, 0.1]), np.array([1, 2]))
    assert none.value is None and (none.groups_used, none.groups_skipped) == (0, 2)
    empty = gauc(np.zeros(0), np.zeros(0), np.zeros(0, int))
    assert empty.value is None and empty.groups_skipped == 0


@pytest.mark.parametrize("rate", [0.5, 0.2, 0.013])
def test_ne_is_logloss_over_the_base_rate_entropy(rate: float) -> None:
    n = 1000
    y = np.zeros(n)
    y[: round(rate * n)] = 1.0
    p = y.mean()
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))  # textbook binary entropy
    assert base_rate_entropy(y) == pytest.approx(h, rel=1e-12)
    assert normalized_entropy(0.3, y) == pytest.approx(0.3 / h, rel=1e-12)
    # the constant predictor at the base rate has NE 1
    q = np.full(n, p)
    ll = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
    assert normalized_entropy(ll, y) == pytest.approx(1.0, rel=1e-12)


def test_ne_undefined_for_a_single_class_or_no_rows() -> None:
    assert normalized_entropy(0.1, np.zeros(10)) is None
    assert normalized_entropy(0.1, np.ones(10)) is None
    assert normalized_entropy(0.1, np.zeros(0)) is None
    assert normalized_entropy(None, np.array([0.0, 1.0])) is None


def test_cvr_scores_under_esmm_recover_the_cvr_tower() -> None:
    rng = np.random.default_rng(1)
    ctr, cvr = rng.random(100) * 0.9 + 0.05, rng.random(100)
    np.testing.assert_allclose(cvr_scores(ctr, ctr * cvr), cvr, rtol=1e-12)
    assert cvr_scores(np.array([0.0]), np.array([0.0]))[0] == 0.0
