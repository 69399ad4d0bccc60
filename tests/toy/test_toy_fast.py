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
        assert got.stats == ref.stats  # counters, PUB's final α, FAMO's weights: same bits
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


def test_solve_rows_is_newtons_solve_on_every_row():
    """The batched α solve (newton's own iteration per row) against mtopt.solvers.solve, cold
    and warm, with rows off the common path: a zero column, opposite and parallel updates."""
    from mtopt.solvers import solve
    from mtopt.toy.fast_balance import solve_rows

    rng = np.random.default_rng(0)
    n = 400
    D = rng.standard_normal((n, 2, 2)) * rng.uniform(1e-3, 1e3, (n, 1, 1))
    D[0, 0] = 0.0  # a zero update column
    D[1, 1] = -D[1, 0]  # opposite updates: Pareto-stationary
    D[2, 1] = 3.0 * D[2, 0]  # parallel updates
    # nearly opposite updates, as Nash-MTL meets on the front: α diverges, Newton stalls, or
    # the residual lands near tol
    ang = np.pi - 10.0 ** rng.uniform(-9, -2, 200)
    D[200:, 0] = np.stack([np.ones(200), np.zeros(200)], axis=1)
    D[200:, 1] = np.stack([np.cos(ang), np.sin(ang)], axis=1) * rng.uniform(0.01, 100, (200, 1))
    G = np.einsum("bik,bjk->bij", D, D)
    alpha0 = rng.uniform(0.1, 3.0, (n, 2))
    alpha0[200:] *= 10.0 ** rng.uniform(0, 7, (200, 1))
    warm = rng.random(n) < 0.5
    alpha, ok = solve_rows(G, alpha0, warm)
    assert 10 < ok[200:].sum() < 190  # both outcomes among the nearly opposite rows
    for b in range(n):
        ref = solve(G[b], "newton", validate="light", **({"alpha0": alpha0[b]} if warm[b] else {}))
        assert ok[b] == ref.ok, b
        if ref.ok:
            assert alpha[b].tolist() == ref.alpha.tolist(), b
    assert not ok[0] and not ok[1] and ok[2]


def test_a_batch_that_leaves_the_fast_path_reruns_per_run_with_honest_progress(monkeypatch):
    from mtopt.toy import fast_balance

    real = fast_balance.PubBatch.advance
    calls = {"n": 0}

    def flaky(self, *args):
        calls["n"] += 1
        if calls["n"] == 1500:
            raise fast_balance.LeaveFastPath("test")
        return real(self, *args)

    monkeypatch.setattr(fast_balance.PubBatch, "advance", flaky)
    seen: list[int] = []
    starts = toy.STANDARD_STARTS[:2]
    runs = run_fast(["ls", "pub_exact"], starts, steps=2000, progress=seen.append)
    assert sum(seen) == 2 * 2 * 2000  # the abandoned batch's 1000 steps are not counted twice
    assert [(r.method, r.start_index) for r in runs] == [
        (m, i) for m in ("ls", "pub_exact") for i in range(2)
    ]
    for b, s in enumerate(starts):
        for r, m in ((runs[b], "ls"), (runs[2 + b], "pub_exact")):
            ref = toy.run_toy(m, s, steps=2000, exact_path=True)
            assert r.final_point == ref.final_point and r.stats == ref.stats


def test_one_batch_of_every_method_equals_one_batch_per_method():
    together = run_fast(list(FAST_METHODS), toy.STANDARD_STARTS, steps=400)
    alone = [r for m in FAST_METHODS for r in run_fast(m, toy.STANDARD_STARTS, steps=400)]
    assert [r.trajectory for r in together] == [r.trajectory for r in alone]
    assert [r.stats for r in together] == [r.stats for r in alone]
