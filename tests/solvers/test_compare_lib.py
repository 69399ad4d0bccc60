"""compare-solvers library logic: scenario generators, runs, summary, files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from mtopt.compare import (
    SCENARIOS,
    CompareConfig,
    format_summary,
    make_gram,
    run,
    summarize,
    write_outputs,
)
from mtopt.errors import InputError


def _cos(G):
    d = np.sqrt(np.diag(G))
    return G / np.outer(d, d)


def test_scenarios_are_seeded_and_have_their_defining_property():
    for s in SCENARIOS:
        np.testing.assert_array_equal(make_gram(s, 5, 3, 7), make_gram(s, 5, 3, 7))
        assert not np.array_equal(make_gram(s, 5, 3, 7), make_gram(s, 5, 3, 8))
    for n in (2, 3, 5, 10):
        C = _cos(make_gram("conflicting", n, 0, 1))
        assert C[0, 1] < -0.5  # at least one conflicting pair, PSD kept
        assert np.linalg.eigvalsh(C).min() > -1e-10
        G = make_gram("ill-conditioned", n, 0, 1)
        if n >= 2:
            norms = np.sqrt(np.diag(G))
            assert norms.max() / norms.min() > 1e7
        assert _cos(make_gram("near-duplicate", n, 0, 1))[0, 1] > 1 - 1e-7
        Go = make_gram("opposite", n, 0, 1)
        u = np.zeros(n)
        u[0], u[1] = np.sqrt(Go[1, 1]), np.sqrt(Go[0, 0])  # d0·|d1| + d1·|d0| = 0
        assert np.abs(Go @ u).max() <= 1e-9 * np.abs(Go).max()
        assert _cos(make_gram("correlated", n, 0, 1))[np.triu_indices(n, 1)].min() > 0


def test_unknown_scenario_is_input_error():
    with pytest.raises(InputError, match="scenarios"):
        CompareConfig(scenarios=["nope"]).check()


def test_run_summary_and_files(tmp_path):
    cfg = CompareConfig(
        ns=(2, 3), instances=3, heavy_instances=2, scenarios=("random", "opposite"),
        solvers=["newton", "closed-form", "fixed-point"],
    )  # fmt: skip
    res = run(cfg)
    assert any("closed-form: skipped for n = 3" in x for x in res.notes)
    # newton (2 n × 2 scenarios × 3) + fixed-point (same) + closed-form (n = 2 only)
    assert len(res.rows) == 12 + 12 + 6
    assert {r["solver"] for r in res.rows if r["n"] == 3} == {"newton", "fixed-point"}
    for r in res.rows:
        if r["scenario"] == "opposite" and r["solver"] != "fixed-point":
            assert r["status"] == "pareto_stationary"
    summary = summarize(res)
    by = {(e["solver"], e["scenario"]): e for e in summary.by_scenario}
    assert by[("newton", "opposite")]["failure_rate"] == 0.0
    assert by[("newton", "random")]["failure_rate"] == 0.0
    newton2 = next(e for e in summary.by_n if e["solver"] == "newton" and e["n"] == 2)
    times = [r["seconds"] for r in res.rows if r["solver"] == "newton" and r["n"] == 2
             and r["scenario"] == "random"]  # fmt: skip
    assert newton2["median_seconds"] == pytest.approx(float(np.median(times)))
    assert newton2["speed_ratio_vs_ccp"] is None  # ccp not run
    paths = write_outputs(res, summary, tmp_path, plots=False)  # PNGs: see tests/cli
    assert {p.name for p in paths} == {"results.json", "results.csv", "summary.md"}
    rows = json.loads((tmp_path / "results.json").read_text())
    assert len(rows) == len(res.rows)
    assert {"solver", "scenario", "n", "seconds", "residual", "status"} <= set(rows[0])
    with open(tmp_path / "results.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    text = format_summary(res, summary)
    assert "median time" in text and "failure rate" in text.lower()


def test_failures_are_counted_against_the_expected_status(monkeypatch):
    """A backend that always says not_converged fails every non-degenerate row and passes
    no row of `opposite` (there the expected status is pareto_stationary)."""
    from mtopt.registry import registry
    from mtopt.solvers.base import SolveResult

    def lazy(G, *, tol):
        return SolveResult(None, None, 0, 1e-6, "not_converged", "lazy")

    def boom(G, *, tol):
        raise RuntimeError("kaput")

    registry.register("solver", "test-lazy", lazy, "test only")
    registry.register("solver", "test-boom", boom, "test only")
    try:
        cfg = CompareConfig(ns=(2,), instances=2, scenarios=("random", "opposite"),
                            solvers=["test-lazy", "test-boom"])  # fmt: skip
        res = run(cfg)
        summary = summarize(res)
        by = {(e["solver"], e["scenario"]): e["failure_rate"] for e in summary.by_scenario}
        assert by[("test-lazy", "random")] == 1.0
        assert by[("test-boom", "random")] == 1.0
        assert any("kaput" in v for v in res.errors.values())
        assert {r["status"] for r in res.rows if r["solver"] == "test-boom"} == {"error"}
    finally:
        registry._entries["solver"].pop("testlazy")
        registry._entries["solver"].pop("testboom")


def test_old_module_path_is_a_deprecated_alias():
    import importlib
    import sys

    import mtopt.compare as new

    sys.modules.pop("mtopt.solvers.compare", None)
    with pytest.warns(DeprecationWarning, match="kept for one release"):
        old = importlib.import_module("mtopt.solvers.compare")
    assert old.run is new.run and old.CompareConfig is new.CompareConfig
