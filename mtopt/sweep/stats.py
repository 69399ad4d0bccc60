"""Statistics of the tables: Welch's t-tests, best-in-column, the Diff metric, mean ± std."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: significance level of the ‡ marks
ALPHA_LEVEL = 0.05


#: decimals shown (and compared for bold) in the tables, as in the paper
DECIMALS = 4


def welch_greater(a: Sequence[float], b: Sequence[float]) -> float | None:
    """One-sided Welch t-test p-value of ``mean(a) > mean(b)`` (scipy.stats.ttest_ind with
    ``equal_var=False, alternative="greater"``); None with fewer than 2 values per side or when
    both samples are constant (scipy then returns p = 0 or NaN: no evidence either way)."""
    return _welch(a, b, "greater")


def welch_two_sided(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t-test p-value (None when undefined, see :func:`welch_greater`)."""
    return _welch(a, b, "two-sided")


def _welch(a: Sequence[float], b: Sequence[float], alternative: str) -> float | None:
    from scipy import stats

    a, b = _clean(a), _clean(b)
    if a is None or b is None or (max(a) == min(a) and max(b) == min(b)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's near-constant-data warning
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)
    return p if math.isfinite(p) else None


def _clean(x: Sequence[float]) -> list[float] | None:
    """The finite values, or None with fewer than 2 of them."""
    v = [float(t) for t in x if t is not None and math.isfinite(t)]
    return v if len(v) >= 2 else None


def best_rows(means: dict[Any, float | None], decimals: int = DECIMALS) -> set[Any]:
    """Rows whose mean, rounded to ``decimals`` as displayed, equals the column's maximum
    (all tied rows; none when no row has a value)."""
    vals = {k: round(v, decimals) for k, v in means.items() if v is not None and math.isfinite(v)}
    if not vals:
        return set()
    top = max(vals.values())
    return {k for k, v in vals.items() if v == top}


def diff_metric(sim_task: float | None, sim_share: float | None) -> float | None:
    """Diff, PUB paper eq. (1): ``2|Sim_task − Sim_share| / |Sim_task + Sim_share|``."""
    if sim_task is None or sim_share is None:
        return None
    den = abs(sim_task + sim_share)
    return 2.0 * abs(sim_task - sim_share) / den if den > 0 else None


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


def _stats(vals: Sequence[float]) -> dict[str, Any]:
    n = len(vals)
    return {
        "n": n,
        "mean": float(np.mean(vals)) if n else None,
        "std": float(np.std(vals, ddof=1)) if n > 1 else None,
        "values": [float(v) for v in vals],
    }


def _cos(dot: float, na: float, nb: float) -> float | None:
    den = math.sqrt(na) * math.sqrt(nb)
    return dot / den if den > 0 and math.isfinite(den) and math.isfinite(dot) else None
