"""`mtopt compare-solvers` end to end (subprocess), tiny configurations."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PY = sys.executable


def _compare(out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "mtopt", "compare-solvers", "--out", str(out), "--no-progress", *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_compare_without_cvxpy_backends(tmp_path):
    p = _compare(tmp_path, "--n", "2,3", "--instances", "3",
                 "--scenarios", "random,conflicting,opposite",
                 "--solvers", "newton,closed-form,fixed-point")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "median time" in p.stdout and "failure rate" in p.stdout.lower()
    assert "closed-form: skipped for n = 3" in p.stdout
    rows = json.loads((tmp_path / "results.json").read_text())
    assert {r["solver"] for r in rows} == {"newton", "closed-form", "fixed-point"}
    assert len([r for r in rows if r["solver"] == "newton"]) == 2 * 3 * 3
    for name in ("results.csv", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0
    for png in ("time_vs_n.png", "residuals.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    newton = [r for r in rows if r["solver"] == "newton"]
    assert all(r["status"] == "ok" and r["residual"] <= 1e-10 for r in newton
               if r["scenario"] != "opposite")  # fmt: skip
    assert all(r["status"] == "pareto_stationary" for r in newton if r["scenario"] == "opposite")


def test_bad_arguments_exit_two(tmp_path):
    p = _compare(tmp_path, "--scenarios", "random,bogus", "--instances", "1")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert "--scenarios" in p.stderr and "bogus" in p.stderr
    p = _compare(tmp_path, "--solvers", "nope", "--instances", "1")
    assert p.returncode == 2 and "--solvers" in p.stderr


@pytest.mark.slow
def test_compare_default_backends_include_ccp(tmp_path):
    p = _compare(tmp_path, "--n", "2,3", "--instances", "2", "--cvxpy-instances", "1",
                 "--scenarios", "random,opposite")  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = json.loads((tmp_path / "results.json").read_text())
    solvers = {r["solver"] for r in rows}
    assert {"newton", "ccp", "ccp-raw", "fixed-point", "closed-form"} <= solvers
    assert len([r for r in rows if r["solver"] == "ccp"]) == 2 * 2 * 1  # capped instances
    assert "run on the first 1 of 2 instances" in p.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert "ccp / newton" in summary and "One-time compilation" in summary
