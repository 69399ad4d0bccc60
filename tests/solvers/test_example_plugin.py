"""The separately installable example plugin (plugins/mtopt-example-plugin) is discovered
through the `mtopt.plugins` entry points: it shows up in `mtopt list` and compare-solvers.

pip installs it into a temporary --target folder (a copy of the source, so the repository
stays clean) that only the subprocesses see via PYTHONPATH: the running venv is untouched,
so nothing needs uninstalling and concurrent test runs are not affected.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mtopt-example-plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
           str(target), str(src)]  # fmt: skip
    if importlib.util.find_spec("setuptools") is not None:
        cmd.insert(5, "--no-build-isolation")  # offline-friendly
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert list(target.glob("mtopt_example_plugin-*.dist-info"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env, tmp


def _run(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mtopt", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_plugin_is_listed_solves_and_is_compared(plugin_env):
    env, tmp = plugin_env
    p = _run(env, "list", "solvers")
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if x.split()[:1] == ["scipy-root"])
    assert "[plugin: mtopt_example_plugin]" in line

    out = tmp / "cmp"
    p = _run(env, "compare-solvers", "--n", "2,3", "--instances", "2", "--cvxpy-instances", "1",
             "--scenarios", "random", "--out", str(out), "--no-progress")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "scipy-root" in p.stdout
    rows = json.loads((out / "results.json").read_text())
    mine = [r for r in rows if r["solver"] == "scipy-root"]
    assert len(mine) == 4 and all(r["status"] == "ok" for r in mine)
    assert all(r["residual"] <= 1e-10 for r in mine)

    # and the running process (no plugin on its path) does not see it
    from mtopt.registry import registry

    assert not registry.has("solver", "scipy-root")


def test_plugin_solver_maths_without_installing(monkeypatch):
    """The plugin's solver itself (imported from the source tree) agrees with newton."""
    import numpy as np

    from mtopt.solvers import solve

    monkeypatch.syspath_prepend(str(PLUGIN))
    from mtopt_example_plugin.solver import solve as root_solve

    rng = np.random.default_rng(4)
    for n in (2, 3, 6):
        D = rng.standard_normal((3 * n, n)) * 10.0 ** rng.uniform(-2, 2, size=n)
        G = D.T @ D
        r = root_solve(G)
        assert r.status == "ok"
        np.testing.assert_allclose(r.alpha, solve(G).alpha, rtol=1e-9)
    assert root_solve(np.array([[1.0, -1.0], [-1.0, 1.0]])).status == "pareto_stationary"
