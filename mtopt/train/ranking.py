"""Ranking metrics beyond the per-task AUC: normalized entropy, group AUC and the CVR AUC on
clicked rows (numpy only; the evaluation in :mod:`mtopt.train.metrics` calls them).

- **NE** (normalized entropy, He et al., "Practical Lessons from Predicting Clicks on Ads at
  Facebook", ADKDD 2014): the log-loss divided by the entropy of the base rate,
  ``H(p) = −(p log p + (1 − p) log(1 − p))`` with ``p`` the positive rate of the labels
  evaluated. 1 is the constant predictor ``p``; lower is better. Undefined (``None``) when the
  labels have a single class (``H(p) = 0``).
- **GAUC** (group AUC, Zhou et al., "Deep Interest Network", KDD 2018): the AUC within each
  group (a user, a search session), averaged over the groups weighted by their impressions
  (rows). Groups whose rows have a single class have no AUC: they are skipped and counted.
- **CVR AUC on clicked rows** (Ma et al., ESMM, SIGIR 2018): for a click → conversion funnel
  whose conversion label is CTCVR (click and conversion), the AUC of the predicted conversion
  rate given a click, ``pCTCVR / pCTR``, on the rows with ``click = 1`` (under ESMM this ratio
  is the CVR tower's own ``σ(l)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def base_rate_entropy(labels: np.ndarray) -> float | None:
    """``H(p)`` in nats of the positive rate ``p`` of ``labels`` (``None``: no rows)."""
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0:
        return None
    p = float(y.mean())
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return float(-(p * np.log(p) + (1.0 - p) * np.log1p(-p)))


def normalized_entropy(logloss: float | None, labels: np.ndarray) -> float | None:
    """``logloss / H(base rate)``; ``None`` when either is undefined or ``H = 0``."""
    h = base_rate_entropy(labels)
    if logloss is None or h is None or h <= 0.0:
        return None
    return float(logloss / h)


def group_aucs(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group (in increasing group id): ``(rows, positives, auc)``; ``auc`` is NaN for a
    group with a single class. Ties count one half (Mann–Whitney U with mid-ranks), computed
    for all groups at once by one sort."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    g = np.asarray(groups).reshape(-1)
    n = y.size
    if not (s.size == n == g.size):
        raise ValueError(f"labels, scores and groups differ in length ({n}, {s.size}, {g.size})")
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    order = np.lexsort((s, g))  # by group, then by score
    g, s, y = g[order], s[order], y[order]
    new_group = np.r_[True, g[1:] != g[:-1]]
    gid = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    new_run = new_group | np.r_[True, s[1:] != s[:-1]]  # a run of tied scores in one group
    run_start = np.flatnonzero(new_run)
    run_end = np.r_[run_start[1:], n]
    # 1-based mid-rank inside the group of every row of a run
    mid = (run_start + run_end + 1) / 2.0 - group_start[gid[run_start]]
    rank = mid[np.cumsum(new_run) - 1]
    rows = np.bincount(gid).astype(np.int64)
    pos = np.bincount(gid, weights=y)
    rank_sum = np.bincount(gid, weights=rank * y)
    neg = rows - pos
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)
    auc[(pos == 0) | (neg == 0)] = np.nan
    return rows, pos, auc


@dataclass
class GroupAUC:
    """GAUC of one task: value (``None`` if no group has both classes) and group counts."""

    value: float | None
    groups_used: int
    groups_skipped: int

    def counts(self) -> dict[str, int]:
        return {"used": self.groups_used, "skipped": self.groups_skipped}


def gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> GroupAUC:
    """Impression-weighted mean of the per-group AUCs; single-class groups are skipped."""
    rows, _, auc = group_aucs(labels, scores, groups)
    ok = ~np.isnan(auc)
    used, skipped = int(ok.sum()), int((~ok).sum())
    if not used:
        return GroupAUC(None, 0, skipped)
    w = rows[ok].astype(np.float64)
    return GroupAUC(float(np.sum(w * auc[ok]) / np.sum(w)), used, skipped)


def cvr_scores(p_click: np.ndarray, p_ctcvr: np.ndarray) -> np.ndarray:
    """The implied conversion rate given a click, ``pCTCVR / pCTR`` (0 where ``pCTR = 0``)."""
    pc = np.asarray(p_click, dtype=np.float64)
    pv = np.asarray(p_ctcvr, dtype=np.float64)
    out = np.zeros_like(pv)
    np.divide(pv, pc, out=out, where=pc > 0)
    return out
