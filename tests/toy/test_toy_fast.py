"""The toy's numpy fast path against the per-run torch path (mtopt.toy.fast)."""

from __future__ import annotations

import numpy as np
import pytest

from mtopt import toy
from mtopt.toy.fast import FAST_METHODS
from mtopt.toy.run import run_fast

STEPS = 300


@pytest.mark.parametrize("method", FAST_METHODS)
def test_fast_path_matches_the_per_run_path(method):
    fast = run_fast(method, toy.STANDARD_STARTS, steps=STEPS)
    for b, start in enumerate(toy.STANDARD_STARTS):
        ref = toy.run_toy(method, start, steps=STEPS, start_index=b, exact_path=True)
        got = fast[b]
        assert got.start_index == b and got.start == list(start)
        for key in ("final_point", "final_losses"):
            a, r = np.array(getattr(got, key)), np.array(getattr(ref, key))
            np.testing.assert_allclose(a, r, rtol=1e-9, atol=0, err_msg=f"{method} {start} {key}")
        assert got.trajectory["step"] == ref.trajectory["step"]
        assert got.trajectory == ref.trajectory  # the same float32 points
        assert toy.run_toy(method, start, steps=STEPS).final_point == got.final_point


def test_run_all_uses_fast_path_with_honest_progress():
    seen: list[int] = []
    starts = toy.STANDARD_STARTS[:2]
    rows = toy.run_all(["cagrad", "ls", "mgda"], starts, steps=1500, progress=seen.append)
    assert sum(seen) == 3 * 2 * 1500
    assert [(r["method"], r["start_index"]) for r in rows] == [
        (m, i) for m in ("cagrad", "ls", "mgda") for i in range(2)
    ]
    exact = toy.run_all(["ls"], starts, steps=1500, exact_path=True)
    for r, e in zip(rows[2:4], exact):
        np.testing.assert_allclose(r["final_point"], e["final_point"], rtol=1e-9)
