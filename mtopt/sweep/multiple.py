"""Statistics that survive many comparisons: bootstrap confidence intervals of paired
differences, Holm and Benjamini–Hochberg corrections across a table's cells, Δm% against
single-task learning and the mean rank of each row.

scipy provides the bootstrap (:func:`scipy.stats.bootstrap`) and Benjamini–Hochberg
(:func:`scipy.stats.false_discovery_control`); scipy (1.17) has no Holm correction, so
:func:`holm` is the textbook step-down, a few lines.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

#: confidence level of the bootstrap intervals
CONFIDENCE = 0.95

#: bootstrap resamples (percentile intervals; fixed seed, so a table is reproducible)
RESAMPLES = 2000


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (Holm 1979), None kept in place.

    With the m defined p-values sorted, p₍₁₎ ≤ … ≤ p₍ₘ₎, the adjusted value of p₍ⱼ₎ is
    ``min(1, max_{i ≤ j} (m − i + 1) · p₍ᵢ₎)``; reject where it is below α. Controls the
    family-wise error rate under any dependence.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda k: pvalues[k])):  # type: ignore[arg-type,return-value]
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))  # type: ignore[arg-type]
        out[i] = running
    return out


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (q-values), by
    :func:`scipy.stats.false_discovery_control`; None kept in place."""
    from scipy import stats

    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(pvalues)
    if idx:
        q = stats.false_discovery_control([float(pvalues[i]) for i in idx])  # type: ignore[arg-type]
        for i, v in zip(idx, np.atleast_1d(q)):
            out[i] = float(v)
    return out


def bootstrap_ci(
    diffs: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of paired differences
    (:func:`scipy.stats.bootstrap`, :data:`RESAMPLES` resamples, seeded); None with fewer than
    2 differences, (d, d) when they are all equal to d."""
    from scipy import stats

    d = [float(x) for x in diffs if x is not None and math.isfinite(x)]
    if len(d) < 2:
        return None
    if max(d) == min(d):
        return (d[0], d[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (np.asarray(d),),
            np.mean,
            n_resamples=RESAMPLES,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def delta_m(
    method: Sequence[float], reference: Sequence[float], higher_better: Sequence[bool]
) -> float | None:
    """Δm% (Maninis et al. 2019; the MTL literature's summary): the mean over tasks of the
    relative change against the single-task reference, sign-corrected so that positive is
    better: ``100/T · Σₜ (−1)^{lₜ} (Mₘ,ₜ − M_ref,ₜ) / M_ref,ₜ`` with lₜ = 1 where lower is
    better. None when a value is missing or a reference is 0."""
    terms = []
    for m, r, hb in zip(method, reference, higher_better):
        if m is None or r is None or r == 0 or not (math.isfinite(m) and math.isfinite(r)):
            return None
        terms.append((1.0 if hb else -1.0) * (m - r) / r)
    return 100.0 * sum(terms) / len(terms) if terms else None


def mean_ranks(columns: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Mean rank of each row over columns (``{row: value}``, higher is better): rank 1 is
    the best of a column, ties get their average rank (:func:`scipy.stats.rankdata`), a row
    is ranked only in the columns where it has a value."""
    from scipy import stats

    ranks: dict[str, list[float]] = {}
    for col in columns:
        rows = [k for k, v in col.items() if v is not None and math.isfinite(v)]
        for k in col:
            ranks.setdefault(k, [])
        if not rows:
            continue
        r = stats.rankdata([-float(col[k]) for k in rows])  # type: ignore[arg-type]
        for k, v in zip(rows, r):
            ranks[k].append(float(v))
    return {k: (float(np.mean(v)) if v else None) for k, v in ranks.items()}
