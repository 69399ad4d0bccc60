"""`mtopt solve`: exit codes, one-line errors, JSON, file formats, lazy imports (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

PY = sys.executable


def _mtopt(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "mtopt", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("solve")
    rng = np.random.default_rng(0)
    D = rng.standard_normal((20, 3))
    G = D.T @ D
    np.save(d / "G.npy", G)
    np.save(d / "D.npy", D.astype(np.float32))
    np.savetxt(d / "G.csv", G, delimiter=",")
    np.savez(d / "one.npz", G=G)
    np.savez(d / "two.npz", a=G, b=G)
    np.save(d / "opp.npy", np.array([[1.0, -1.0], [-1.0, 1.0]]))
    np.save(d / "nonsym.npy", np.array([[1.0, 0.5], [0.1, 1.0]]))
    np.save(d / "nan.npy", np.array([[1.0, np.nan], [np.nan, 1.0]]))
    np.save(d / "nonpsd.npy", np.array([[1.0, 2.0], [2.0, 1.0]]))
    np.save(d / "rect.npy", np.ones((2, 3)))
    np.save(d / "vec.npy", np.ones(3))
    np.save(d / "Dnan.npy", np.array([[1.0, np.nan], [0.0, 1.0]]))
    (d / "text.csv").write_text("a,b\nc,d\n")
    (d / "G.txt").write_text("1 0\n0 1\n")
    return d, G


def test_ok_prints_json_and_exits_zero(files, tmp_path):
    d, G = files
    out = tmp_path / "sub" / "res.json"
    p = _mtopt("solve", "--gram", str(d / "G.npy"), "--json", "--out", str(out))
    assert p.returncode == 0, p.stderr
    obj = json.loads(p.stdout)
    assert set(obj) >= {"alpha", "residual", "status", "seconds", "iterations", "solver"}
    a = np.array(obj["alpha"])
    assert obj["status"] == "ok" and obj["solver"] == "newton"
    assert np.max(np.abs(a * (G @ a) - 1)) <= 1e-10
    assert json.loads(out.read_text())["alpha"] == obj["alpha"]


def test_pareto_stationary_exits_one_with_json(files):
    d, _ = files
    p = _mtopt("solve", "--gram", str(d / "opp.npy"), "--json")
    assert p.returncode == 1
    obj = json.loads(p.stdout)
    assert obj["status"] == "pareto_stationary" and obj["alpha"] is None


def test_missing_file_is_one_line_exit_two(files):
    d, _ = files
    p = _mtopt("solve", "--gram", str(d / "missing.npy"), "--json")
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtopt: error: ")
    assert "missing.npy" in lines[0] and "Traceback" not in p.stderr


DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from mtopt.cli import main
    out = []
    for argv in json.loads(sys.argv[1]):
        so, se = io.StringIO(), io.StringIO()
        sys.argv = ["mtopt", *argv]
        code = 0
        with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        out.append({"argv": argv, "code": code, "stdout": so.getvalue(), "stderr": se.getvalue()})
    print(json.dumps(out))
    """
)


def test_every_bad_input_exits_two_with_one_line(files):
    d, _ = files
    f = lambda name: str(d / name)  # noqa: E731
    cases = {
        "missing.npy": ["--gram", f("missing.npy")],
        "nonsym.npy": ["--gram", f("nonsym.npy")],
        "nan.npy": ["--gram", f("nan.npy")],
        "nonpsd.npy": ["--gram", f("nonpsd.npy")],
        "rect.npy": ["--gram", f("rect.npy")],
        "vec.npy": ["--gram", f("vec.npy")],
        "two.npz": ["--gram", f("two.npz")],
        "text.csv": ["--gram", f("text.csv")],
        "G.txt": ["--gram", f("G.txt")],
        "Dnan.npy": ["--updates", f("Dnan.npy")],
        "--solver": ["--gram", f("G.npy"), "--solver", "no-such-solver"],
        "--tol": ["--gram", f("G.npy"), "--tol", "-1"],
        "--gram/--updates": ["--gram", f("G.npy"), "--updates", f("D.npy")],
        "closed-form": ["--gram", f("G.npy"), "--solver", "closed-form"],  # n = 3
    }
    argvs = [["solve", *a, "--json"] for a in cases.values()]
    p = subprocess.run([PY, "-c", DRIVER, json.dumps(argvs)], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    results = json.loads(p.stdout)
    for (label, _), r in zip(cases.items(), results):
        assert r["code"] == 2, (label, r)
        assert r["stdout"] == "", (label, r)  # no JSON on bad input
        lines = r["stderr"].strip().splitlines()
        assert len(lines) == 1, (label, r["stderr"])
        assert lines[0].startswith("mtopt: error: "), (label, lines)
        assert label.split("/")[0] in lines[0] or label in lines[0], (label, lines)
        assert ";" in lines[0], (label, lines)  # what ; how to fix


def test_formats_and_updates_agree(files):
    d, G = files
    argvs = [
        ["solve", "--gram", str(d / "G.npy"), "--json"],
        ["solve", "--gram", str(d / "G.csv"), "--json"],
        ["solve", "--gram", str(d / "one.npz"), "--json"],
        ["solve", "--updates", str(d / "D.npy"), "--json"],
        ["solve", "--gram", str(d / "G.npy"), "--solver", "fixed-point", "--json"],
        ["solve", "--gram", str(d / "G.npy")],  # human-readable
    ]
    p = subprocess.run([PY, "-c", DRIVER, json.dumps(argvs)], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    results = json.loads(p.stdout)
    ref = np.array(json.loads(results[0]["stdout"])["alpha"])
    for r in results[1:5]:
        assert r["code"] == 0, r
        np.testing.assert_allclose(json.loads(r["stdout"])["alpha"], ref, rtol=1e-6)
    assert results[5]["code"] == 0 and "status      ok" in results[5]["stdout"]


LAZY = textwrap.dedent(
    """
    import contextlib, io, json, sys
    mode = sys.argv[1]
    if mode == "import":
        import mtopt, mtopt.registry
        mtopt.registry.registry.names("solver")
    else:
        from mtopt.cli import main
        sys.argv = ["mtopt", *sys.argv[2:]]
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main()
            except SystemExit:
                pass
    print(json.dumps({m: m in sys.modules for m in ("torch", "cvxpy")}))
    """
)


@pytest.mark.parametrize(
    "mode,args",
    [
        ("import", []),
        ("cli", ["--help"]),
        ("cli", ["solve", "--gram", "G.npy", "--solver", "newton"]),
    ],
)
def test_lazy_imports(files, mode, args):
    d, _ = files
    p = subprocess.run([PY, "-c", LAZY, mode, *args], capture_output=True, text=True, cwd=d,
                       timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"torch": False, "cvxpy": False}
