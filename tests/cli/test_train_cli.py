"""`mtopt train` end to end: exit codes, one-line errors, --set, the quickstart recipe."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
sys.path.insert(0, str(REPO / "tests" / "train"))
import mtopt_train_fakes as fakes  # noqa: E402

from mtopt.registry import registry  # noqa: E402


def mtopt(*args: str) -> subprocess.CompletedProcess:
    """``python -m mtopt ARGS`` in a subprocess."""
    cmd = [sys.executable, "-m", "mtopt", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def call_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run mtopt.cli.main in-process (same code path as the console script)."""
    from mtopt.cli import main

    monkeypatch.setattr(sys, "argv", ["mtopt", *args])
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_unknown_solver_exit_2_one_line(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    raw = {
        "data": {"name": "synthetic-ranking"},
        "model": {"name": "mmoe"},
        "method": {"name": "pub", "solver": "newtn"},
    }
    recipe.write_text(yaml.safe_dump(raw))
    res = mtopt("train", str(recipe), "--out", str(tmp_path / "o"))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    # the registry as a fresh process sees it (other tests register solvers in this one)
    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mtopt.registry import registry; print(', '.join(registry.names('solver')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    known = fresh.stdout.strip()
    assert lines == [
        f"mtopt: error: {recipe}: method.solver: unknown solver 'newtn'; did you mean "
        f"'newton'? (known: {known})"
    ]
    assert "Traceback" not in res.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--set", "train.epochs=many"], r"recipe.yaml: train.epochs: Input should be a valid int"),
        (["--set", "train.bogus=1"], r"recipe.yaml: train.bogus: unknown field \(known: "),
        (["--set", "data.n_train=-5"], r"recipe.yaml: data.n_train: must be >= 0"),
        (["--set", "method.name=nope"], r"recipe.yaml: method.name: unknown method 'nope'"),
        (["--set", "optimizer"], r"--set 'optimizer': expected KEY=VALUE"),
        (
            ["--set", "method.name=pub", "--set", "method.foo=1"],
            r"recipe.yaml: method.foo: method 'pub' does not take 'foo'",
        ),
        (  # a check inside the method itself: the message still names file and field
            ["--set", "method.name=pub", "--set", "method.fixed_alpha=-1"],
            r"recipe.yaml: method.fixed_alpha: expected a positive number",
        ),
        (
            ["--set", "method.name=pub", "--set", "method.fallback=x"],
            r"recipe.yaml: method.fallback: must be one of previous, skip",
        ),
    ],
)
def test_bad_input_exit_2(monkeypatch, capsys, tmp_path: Path, args, pattern) -> None:
    recipe = tmp_path / "recipe.yaml"
    raw = {"data": {"name": "synthetic-ranking", "n_train": 50, "n_val": 50, "n_test": 50},
           "model": {"name": "mmoe"}, "method": {"name": "ls"}}  # fmt: skip
    recipe.write_text(yaml.safe_dump(raw))
    code, out, err = call_main(
        monkeypatch, capsys, "train", str(recipe), "--out", str(tmp_path / "o"), "-q", *args
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    import re

    assert re.search(pattern, err), err


def test_missing_recipe_exit_2(monkeypatch, capsys, tmp_path: Path) -> None:
    code, _, err = call_main(monkeypatch, capsys, "train", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: no such recipe file" in err


def test_nan_loss_exit_1_keeps_checkpoint(monkeypatch, capsys, tmp_path: Path) -> None:
    recipe = tmp_path / "nan.yaml"
    recipe.write_text(
        yaml.safe_dump(fakes.fake_recipe(model={"nan_at": 4}, train={"checkpoint_every": 1}))
    )
    out = tmp_path / "o"
    code, _, err = call_main(monkeypatch, capsys, "train", str(recipe), "--out", str(out), "-q")
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith("mtopt: error: step 4 ")
    assert "non-finite loss" in err and "Traceback" not in err
    from mtopt.train.checkpoint import load_checkpoint

    assert load_checkpoint(out / "checkpoints" / "last.pt")["position"]["step"] == 3
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_quickstart_tiny_end_to_end(tmp_path: Path) -> None:
    raw = yaml.safe_load(QUICKSTART.read_text())
    if not registry.has("method", raw["method"]["name"]):
        pytest.skip(f"method {raw['method']['name']!r} is not registered yet")
    out = tmp_path / "q"
    res = mtopt(
        "train", str(QUICKSTART), "--out", str(out), "-q",
        "--set", "data.n_train=3000", "--set", "data.n_val=2000", "--set", "data.n_test=2000",
        "--set", "train.epochs=null", "--set", "train.steps=12", "--set", "train.eval_every=6",
        "--set", "optimizer.batch_size=256", "--set", "optimizer.lr=0.01",
        "--set", "train.threads=1",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "val AUC" in res.stdout
    s = json.loads((out / "summary.json").read_text())
    for key in ("test", "val", "best_epoch", "seconds", "alpha", "solver_status"):
        assert key in s
    assert s["steps"] == 12 and s["status"] == "ok"
    assert set(s["test"]["auc"]) == set(s["tasks"]) == {"click", "conversion"}
    for split in ("val", "test"):
        aucs = [*s[split]["auc"].values(), s[split]["auc_avg"]]
        assert all(a is not None and math.isfinite(a) and 0 <= a <= 1 for a in aucs)
    assert s["test"]["auc_avg"] > 0.55  # clearly learned something in 12 steps
    for name in ("loss.png", "auc.png"):
        assert (out / "plots" / name).stat().st_size > 1000
    assert len((out / "metrics.csv").read_text().strip().splitlines()) == 1 + 2
    assert len((out / "steps.csv").read_text().strip().splitlines()) == 1 + 12


def test_data_errors_exit_2(monkeypatch, capsys, tmp_path: Path) -> None:
    """Data problems are reported by the dataset, one line, exit 2, before any training."""
    from mtopt.data.aliexpress import write_synthetic_aliexpress_csv

    recipe = str(REPO / "recipes" / "aliexpress-es.yaml")
    out = str(tmp_path / "o")
    code, _, err = call_main(
        monkeypatch, capsys, "train", recipe, "--out", out, "--set", f"data.path={tmp_path}/nope"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"mtopt: error: {recipe}: data.path: ")
    folder = tmp_path / "ae"
    write_synthetic_aliexpress_csv(folder / "train.csv", 50, 0)
    write_synthetic_aliexpress_csv(folder / "test.csv", 50, 1)
    lines = (folder / "train.csv").read_text().splitlines()
    cells = lines[7].split(",")
    cells[-2] = "2"  # a click label outside {0, 1}
    lines[7] = ",".join(cells)
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    code, _, err = call_main(
        monkeypatch, capsys, "train", recipe, "--out", out, "--set", f"data.path={folder}"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "train.csv" in err and "click" in err


@pytest.mark.slow
def test_nproc_runs_torchrun_and_checks_input_first(tmp_path: Path) -> None:
    """``--nproc 2`` trains with two processes (the summary says so, the global sample count is
    that of one process at the same batch size); bad input exits 2 before any process starts."""
    out = tmp_path / "two"
    small = [
        "--set", "data.n_train=600", "--set", "data.n_val=300", "--set", "data.n_test=300",
        "--set", "train.epochs=null", "--set", "train.steps=3", "--set", "optimizer.batch_size=128",
        "--set", "output.plots=false", "--set", "train.dist_timeout=60",
    ]  # fmt: skip
    res = mtopt("train", str(QUICKSTART), "--out", str(out), "-q", "--nproc", "2", *small)
    assert res.returncode == 0, res.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["processes"] == 2 and s["steps"] == 3 and s["samples"] == 3 * 128
    bad = mtopt("train", str(QUICKSTART), "--nproc", "2", "--set", "optimizer.lr=-1")
    assert bad.returncode == 2 and "optimizer.lr" in bad.stderr
    assert "torch.distributed" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    zero = mtopt("train", str(QUICKSTART), "--nproc", "0")
    assert zero.returncode == 2 and "--nproc" in zero.stderr
