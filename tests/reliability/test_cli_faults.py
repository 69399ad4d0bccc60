"""Bad inputs and faults of solve, compare-solvers, toy, sweep, paired and --nproc: each runs
``python -m mtopt ...`` as a subprocess with a timeout and checks the exit-code contract (the
code; exactly one stderr line, ``mtopt: error: ...``; no traceback) and the files on disk
before and after. The library API cases call :mod:`mtopt.solvers` directly."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mtopt.errors import InputError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"
CENSUS = ROOT / "recipes" / "census-income.yaml"


@dataclass
class _Done:
    returncode: int
    stdout: str
    stderr: str


def mtopt(*args: str, cwd: Path, timeout: float = 60, fsize_kib: int | None = None, env=None):  # noqa: ANN001, ANN201
    """Run ``mtopt ARGS`` in its own process in ``cwd`` (:func:`conftest.run_cli`: forked from
    the warm fork server; ``fsize_kib``: ``ulimit -f``)."""
    r = run_cli(*args, cwd=cwd, timeout=timeout, env=env, fsize_kib=fsize_kib)
    return _Done(r.code, r.out, r.err)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error(res, code: int, *needles: str) -> str:  # noqa: ANN001
    """Assert the contract: exit ``code``, one stderr line ``mtopt: error: ...`` containing
    every needle, no traceback. Returns the line."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("mtopt: error: "), res.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    np.save(tmp_path / "diag.npy", np.diag([1.0, 4.0, 9.0]))
    (tmp_path / "a-file").write_text("I am a file\n")
    return tmp_path


# -- mtopt solve ------------------------------------------------------------------------------


def test_solve_diagonal_gram_is_ok_with_the_closed_form_and_no_false_not_psd(work: Path) -> None:
    d = np.array([0.25, 4.0, 9.0, 1e-6])
    np.save(work / "g.npy", np.diag(d))
    res = mtopt("solve", "--gram", "g.npy", "--out", "r.json", cwd=work)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    doc = json.loads((work / "r.json").read_text())
    assert doc["status"] == "ok"
    np.testing.assert_allclose(doc["alpha"], 1 / np.sqrt(d), rtol=1e-12)  # αᵢ = 1/√Gᵢᵢ
    assert "PSD" not in json.dumps(doc["info"])


def test_solve_huge_dynamic_range_is_solved_without_numpy_warnings(work: Path) -> None:
    d = np.array([1e-30, 1.0, 1e30])
    np.save(work / "g.npy", np.diag(d))
    res = mtopt("solve", "--gram", "g.npy", "--json", cwd=work)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "ok"
    np.testing.assert_allclose(doc["alpha"], 1 / np.sqrt(d), rtol=1e-12)
    # the same from updates whose column norms span 1e-8 … 1e8 (warnings would show here)
    D = np.random.default_rng(0).normal(size=(6, 3)) * np.array([1e-8, 1.0, 1e8])
    np.save(work / "d.npy", D)
    res = mtopt("solve", "--updates", "d.npy", "--json", cwd=work)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    a = np.array(json.loads(res.stdout)["alpha"])
    assert np.max(np.abs(a * ((D.T @ D) @ a) - 1)) < 1e-9


def test_solve_text_file_named_npy_is_not_called_pickled(work: Path) -> None:
    (work / "g.npy").write_text("1, 0\n0, 1\n")
    line = one_error(mtopt("solve", "--gram", "g.npy", cwd=work), 2, "g.npy", "not a .npy file")
    assert "pickle" not in line


def test_solve_ccp_on_a_large_gram_is_refused_at_once(work: Path) -> None:
    np.save(work / "big.npy", np.eye(250) + 0.1)
    res = mtopt("solve", "--gram", "big.npy", "--solver", "ccp", cwd=work, timeout=20)
    one_error(res, 2, "n = 200", "--solver newton")


def test_solve_updates_that_overflow_are_bad_input(work: Path) -> None:
    np.save(work / "d.npy", np.full((3, 2), 1e200))
    one_error(mtopt("solve", "--updates", "d.npy", cwd=work), 2, "overflows float64")


@pytest.mark.parametrize("target", ["sub", "a-file/r.json"])
def test_solve_out_that_cannot_be_a_file_leaves_everything_as_it_was(
    work: Path, target: str
) -> None:
    (work / "sub").mkdir()
    before = snapshot(work)
    one_error(mtopt("solve", "--gram", "diag.npy", "--out", target, cwd=work), 2, "--out")
    assert snapshot(work) == before


def test_solve_out_failing_while_writing_is_one_line_exit_1(work: Path) -> None:
    res = mtopt("solve", "--gram", "diag.npy", "--out", "/proc/no-such/r.json", cwd=work)
    one_error(res, 1, "/proc/no-such")


# -- mtopt compare-solvers ----------------------------------------------------------------------

_COMPARE = ["compare-solvers", "--n", "2", "--instances", "2", "--solvers", "newton"]


def test_compare_refuses_to_replace_results_without_overwrite(work: Path) -> None:
    out = work / "cmp"
    out.mkdir()
    (out / "results.json").write_text("[]\n")
    before = snapshot(work)
    one_error(mtopt(*_COMPARE, "--no-progress", "--out", "cmp", cwd=work), 2, "--overwrite")
    assert snapshot(work) == before
    res = mtopt(*_COMPARE, "--no-progress", "--out", "cmp", "--overwrite", cwd=work)
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "results.json").read_text())  # replaced by the new rows


def test_compare_out_is_a_file(work: Path) -> None:
    before = snapshot(work)
    one_error(mtopt(*_COMPARE, "--no-progress", "--out", "a-file", cwd=work), 2, "a-file")
    assert snapshot(work) == before


def test_compare_unknown_solver_writes_nothing(work: Path) -> None:
    before = snapshot(work)
    res = mtopt("compare-solvers", "--solvers", "newtn", "--out", "cmp", cwd=work)
    one_error(res, 2, "--solvers")
    assert snapshot(work) == before and not (work / "cmp").exists()


def test_compare_file_size_limit_is_one_line_and_leaves_no_temp_file(work: Path) -> None:
    res = mtopt(
        *_COMPARE[:-4], "--n", "2,3", "--instances", "20", "--solvers", "newton",
        "--no-progress", "--out", "cmp", cwd=work, fsize_kib=1,
    )  # fmt: skip
    one_error(res, 1, "file size limit")
    assert not [p for p in work.rglob("*.tmp")]


# -- mtopt toy ----------------------------------------------------------------------------------


def test_toy_refuses_to_replace_results_without_overwrite(work: Path) -> None:
    (work / "toy").mkdir()
    (work / "toy" / "toy.json").write_text('{"runs": []}\n')
    before = snapshot(work)
    res = mtopt("toy", "--methods", "ls", "--steps", "5", "--out", "toy", cwd=work)
    one_error(res, 2, "toy.json", "--overwrite")
    assert snapshot(work) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--jobs", "-1"], "--jobs"), (["--methods", "nosuch"], "--methods"),
     (["--steps", "0"], "--steps"), (["--out", "a-file"], "--out")],
)  # fmt: skip
def test_toy_bad_input_writes_nothing(work: Path, args: list[str], needle: str) -> None:
    before = snapshot(work)
    one_error(mtopt("toy", "--steps", "5", *args, cwd=work), 2, needle)
    assert snapshot(work) == before and not (work / "toy-out").exists()


# -- mtopt sweep / paired -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--methods", "pub[solve_every=]"], "--methods"),
        (["--backbones", "mmoe["], "--backbones"),
        (["--jobs", "0"], "--jobs"),
        (["--out", "a-file"], "--out"),
        (["--methods", "nosuch"], "nosuch"),
    ],
)
def test_sweep_bad_input(work: Path, args: list[str], needle: str) -> None:
    before = snapshot(work)
    one_error(mtopt("sweep", str(QUICKSTART), *args, cwd=work), 2, needle)
    assert snapshot(work) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--methods", "cagrad[c=0.9..0.1]"], "cagrad[c]"),
        (["--trials", "0"], "--trials"),
        (["--lr", "0..1"], "lr"),
        (["--storage", "nosuch://x"], "--storage"),
    ],
)
def test_tune_bad_input(work: Path, args: list[str], needle: str) -> None:
    pytest.importorskip("optuna")
    before = snapshot(work)
    one_error(mtopt("tune", str(QUICKSTART), "--out", "t", *args, cwd=work), 2, needle)
    assert snapshot(work) == before


def test_sweep_unknown_preset(work: Path) -> None:
    one_error(mtopt("sweep", "--preset", "quik", cwd=work), 2, "--preset")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        ("not json", "not readable as JSON"),
        ('{"a": 1}', "not a sweep's results.json"),
        ('{"runs": [1, 2]}', "runs[0]"),
        ('{"runs": [{"recipe": "r", "backbone": "b", "method": "PUB", "seed": 0}]}', "'LS'"),
    ],
)
def test_paired_bad_results(work: Path, content: str | None, needle: str) -> None:
    if content is not None:
        (work / "results.json").write_text(content)
    one_error(mtopt("paired", "results.json", "PUB", "LS", cwd=work), 2, needle)


# -- one place for the contract: mtopt.cli.main -----------------------------------------------

_RAISE = """
import sys
from mtopt.cli import app, main

@app.command("boom")
def boom() -> None:
    raise {exc}

sys.argv = ["mtopt", "boom"]
main()
"""


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        ("ZeroDivisionError('division by zero')", 1, "unexpected ZeroDivisionError"),
        ("OSError(28, 'No space left on device', 'runs/x/summary.json')", 1, "free disk space"),
        ("__import__('mtopt.errors').errors.RunError('the run failed')", 1, "the run failed"),
        ("__import__('mtopt.errors').errors.InputError('x.yaml: bad\\nvalue')", 2, "bad value"),
        ("KeyboardInterrupt()", 130, "interrupted; a run resumes from its last checkpoint"),
    ],
)
def test_main_turns_every_exception_into_one_line(
    tmp_path: Path, exc: str, code: int, needle: str
) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", _RAISE.format(exc=exc)]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    one_error(res, code, needle)
    debug = subprocess.run(
        cmd, cwd=tmp_path, env={**env, "MTOPT_DEBUG": "1"}, capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip
    assert debug.returncode == code
    if code == 1 and "RunError" not in exc:  # the traceback on request
        assert "Traceback" in debug.stderr
        assert debug.stderr.strip().splitlines()[-1].startswith("mtopt: error: ")


def test_help_shows_no_bool_after_flags(tmp_path: Path) -> None:
    for cmd in ("train", "solve", "compare-solvers", "toy", "sweep", "reproduce", "paired", "tune"):
        res = mtopt(cmd, "--help", cwd=tmp_path, env={"COLUMNS": "120"})
        assert res.returncode == 0 and "<bool>" not in res.stdout, (cmd, res.stdout)


# -- the library API ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "G",
    [np.array([[1.0, 2.0], [2.0, 1.0]]), np.ones((2, 3)), np.array([[1.0, np.nan], [0, 1]]),
     np.diag([1.0, 1e305])],
)  # fmt: skip
def test_library_solve_bad_gram_raises_input_error_naming_G(G: np.ndarray) -> None:
    from mtopt.solvers import solve

    with pytest.raises(InputError, match=r"^G: "):
        solve(G)


def test_library_ccp_size_guard_and_dynamic_range() -> None:
    from mtopt.solvers import solve

    with pytest.raises(InputError, match=r"solver: ccp accepts at most n = 200.*newton"):
        solve(np.eye(201), "ccp")
    d = np.array([1e-40, 1.0, 1e40])
    r = solve(np.diag(d))
    assert r.status == "ok" and r.info == {"residual_floor": r.info["residual_floor"]}
    np.testing.assert_allclose(r.alpha, 1 / np.sqrt(d), rtol=1e-12)
    # two tasks, closed form α = 1/(√Gᵢᵢ·√(1 + cos)), norms 1e-20 and 1e20 apart
    cos, g = -0.5, np.array([1e-20, 1e20])
    G = np.array([[g[0], cos * math.sqrt(g[0] * g[1])], [cos * math.sqrt(g[0] * g[1]), g[1]]])
    np.testing.assert_allclose(solve(G).alpha, 1 / (np.sqrt(g) * math.sqrt(1 + cos)), rtol=1e-9)


# -- --nproc: the parent prints one line with the worker's code (a few seconds each) ------------


@pytest.mark.slow
def test_nproc_worker_input_error_is_one_line_exit_2(tmp_path: Path) -> None:
    """The census recipe passes the parent's checks; its missing data fails in the workers."""
    res = mtopt("train", str(CENSUS), "--nproc", "2", "--out", "run", cwd=tmp_path, timeout=120)
    one_error(res, 2, "data.path")
    assert "torch.distributed" not in res.stderr and "ChildFailedError" not in res.stderr


@pytest.mark.slow
def test_nproc_launcher_relays_a_worker_os_error_as_exit_1(tmp_path: Path) -> None:
    """The launcher itself on a command that fails in every worker with exit 1."""
    np.save(tmp_path / "g.npy", np.eye(2))
    script = (
        "import sys\nfrom mtopt.cli.launch import run_torchrun\n"
        "code, msg = run_torchrun(2, ['solve', '--gram', 'g.npy', '--out', '/proc/no/r.json'])\n"
        "print(msg, file=sys.stderr)\nsys.exit(code)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().splitlines() == [
        "/proc/no: No such file or directory; check the path"
    ]
