"""The multiple-comparison statistics of the AUC table, against textbook procedures."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mtopt.sweep.multiple import benjamini_hochberg, bootstrap_ci, delta_m, holm, mean_ranks

P = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12)


def _holm_rejects(ps, alpha):
    """Holm's sequential procedure: reject p_(k) while p_(k) <= alpha / (m - k + 1)."""
    order, m, out = sorted(range(len(ps)), key=lambda i: ps[i]), len(ps), set()
    for k, i in enumerate(order):
        if ps[i] > alpha / (m - k):
            break
        out.add(i)
    return out


def _bh_rejects(ps, alpha):
    """BH step-up: reject the k smallest, k the largest with p_(k) <= k alpha / m."""
    order, m = sorted(range(len(ps)), key=lambda i: ps[i]), len(ps)
    ks = [k + 1 for k, i in enumerate(order) if ps[i] <= (k + 1) * alpha / m]
    return set(order[: max(ks)]) if ks else set()


@settings(max_examples=60, deadline=None)
@given(P, st.sampled_from([0.01, 0.05, 0.1]))
def test_adjusted_p_values_reject_what_the_procedures_reject(ps, alpha):
    h, q = holm(ps), benjamini_hochberg(ps)
    assert {i for i, v in enumerate(h) if v <= alpha} == _holm_rejects(ps, alpha)
    assert {i for i, v in enumerate(q) if v <= alpha + 1e-12} == _bh_rejects(ps, alpha)


def test_missing_p_values_stay_missing_and_do_not_count():
    assert holm([None, 0.01, 0.04]) == [None, 0.02, 0.04]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-0.01, 0.01), min_size=2, max_size=8))
def test_the_bootstrap_interval_holds_the_mean_within_the_data(d):
    lo, hi = bootstrap_ci(d)
    assert min(d) - 1e-12 <= lo <= np.mean(d) + 1e-12 <= hi + 2e-12 <= max(d) + 3e-12
    assert bootstrap_ci(d[:1]) is None


def test_delta_m_is_the_sign_corrected_mean_relative_change():
    # AUC up 2% (higher better), log-loss down 10% (lower better): both improvements
    assert delta_m([0.714, 0.45], [0.7, 0.5], [True, False]) == (2.0 + 10.0) / 2
    assert delta_m([0.7], [0.0], [True]) is None


def test_mean_rank_counts_better_rows_and_averages_ties():
    cols = [{"a": 0.9, "b": 0.8, "c": 0.8}, {"a": 0.1, "b": 0.5, "c": None}]
    # col 1: a 1st, b and c tie for 2nd/3rd (2.5); col 2: b 1st, a 2nd, c unranked
    assert mean_ranks(cols) == {"a": 1.5, "b": 1.75, "c": 2.5}
