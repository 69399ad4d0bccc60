"""``mtopt train`` on bad input and faults: exit code, one stderr line, no traceback, no hang,
and the files on disk before and after (issue 15; the contract is docs/errors.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import assert_error, mode_of, run_cli, snapshot, train  # noqa: E402


# ---------------------------------------------------------------- 1. the empty split (a hang)
@pytest.mark.parametrize("length", ["train.steps=5", "train.epochs=2"])
def test_empty_training_split_is_bad_input(tmp_path: Path, length: str) -> None:
    out = tmp_path / "run"
    other = "train.epochs=null" if "steps" in length else "train.steps=null"
    r = train("--out", str(out), "--set", "data.n_train=0", "--set", other, "--set", length,
              timeout=40)  # fmt: skip
    assert_error(r, 2, "data.n_train", "0 row(s)")
    assert not out.exists()  # nothing written


def _aliexpress(folder: Path, train_rows: list[str], test_rows: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    head = "categorical_1,numerical_1,click,conversion\n"
    default = ["1,0.5,1,0", "2,0.1,0,0", "0,0.3,1,1", "3,0.2,0,0"]
    (folder / "train.csv").write_text(head + "".join(x + "\n" for x in train_rows))
    (folder / "test.csv").write_text(head + "".join(x + "\n" for x in (test_rows or default)))
    recipe = folder / "r.yaml"
    recipe.write_text(
        "data: {name: aliexpress, path: " + str(folder) + ", val_from: test, val_fraction: 0.5}\n"
        "model: {name: mmoe, expert_dim: 4, embed_dim: 4, tower_dims: [4]}\n"
        "method: {name: ls}\noptimizer: {batch_size: 2}\ntrain: {steps: 3}\n"
        "output: {plots: false, progress: false}\n"
    )
    return recipe


def test_header_only_train_csv_is_bad_input(tmp_path: Path) -> None:
    recipe = _aliexpress(tmp_path / "d", [])
    r = run_cli("train", recipe, "--out", tmp_path / "run", timeout=40)
    assert_error(r, 2, "train.csv", "0 row(s)")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "engine, needle",
    [("pandas", "one of auto, polars, numpy, got 'pandas'"), ("polars", "'polars' is unavailable")],
)
def test_csv_engine_errors_name_the_recipe_field(tmp_path: Path, engine: str, needle: str) -> None:
    recipe = _aliexpress(tmp_path / "d", ["1,0.5,1,0", "2,0.1,0,0"])
    stub = tmp_path / "hide" / "polars"  # an installed polars that does not import
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join([str(stub.parent), root, os.environ.get("PYTHONPATH", "")])
    r = run_cli("train", recipe, "--out", tmp_path / "run", "--set", f"data.csv_engine={engine}",
                env={"PYTHONPATH": path}, prefix=("env",), timeout=60)  # fmt: skip
    line = assert_error(r, 2, f"{recipe}: data.csv_engine: {needle}")
    if engine == "polars":
        assert "pip install 'mtopt[polars]'" in line
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- 2. overwrite loses nothing
def test_overwrite_with_bad_input_keeps_the_old_run(run_copy: Path) -> None:
    before = snapshot(run_copy)
    r = train("--out", str(run_copy), "--overwrite", "--set", "model.expert_dim=big")
    assert_error(r, 2, "model.expert_dim")
    assert snapshot(run_copy) == before


def test_overwrite_failing_before_its_first_checkpoint_restores_the_old_run(
    run_copy: Path,
) -> None:
    before = snapshot(run_copy)
    r = train("--out", str(run_copy), "--overwrite", "--set", "optimizer.lr=1e6",
              "--set", "train.steps=30", "--set", "optimizer.batch_size=32")  # fmt: skip
    assert_error(r, 1, "diverged", "no checkpoint was written")
    assert snapshot(run_copy) == before


def test_overwrite_replaces_only_the_runs_own_files(run_copy: Path) -> None:
    for rel in ("plots/mine.png", "checkpoints/keep.pt", "notes.txt"):
        (run_copy / rel).parent.mkdir(exist_ok=True)
        (run_copy / rel).write_text("user file")
    old = snapshot(run_copy)
    r = train("--out", str(run_copy), "--overwrite", "--set", "train.seed=1")
    assert r.code == 0, r.err
    new = snapshot(run_copy)
    for rel in ("plots/mine.png", "checkpoints/keep.pt", "notes.txt"):
        assert new[rel] == old[rel]
    assert new["checkpoints/last.pt"] != old["checkpoints/last.pt"]
    assert not any(".mtopt-replaced-" in k for k in new)  # the old run is gone once started


# ---------------------------------------------------------------- 3. one line, never a traceback
def test_out_is_an_existing_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("mine")
    r = train("--out", str(f))
    assert_error(r, 2, "--out", "is a file")
    assert f.read_text() == "mine"


def test_out_lies_under_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("mine")
    assert_error(train("--out", str(f / "sub")), 2, "--out", "which is a file")


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_out_file_with_resume_or_overwrite(tmp_path: Path, flag: str) -> None:
    f = tmp_path / "file"
    f.write_text("mine")
    assert_error(train("--out", str(f), flag), 2, "--out")
    assert f.read_text() == "mine"


@pytest.mark.skipif(sys.platform == "win32", reason="ulimit")
def test_disk_full_on_a_fresh_run_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = train("--out", str(out), fsize_kib=60)
    assert_error(r, 1, "File too large")
    assert not out.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="ulimit")
def test_disk_full_on_resume_keeps_the_checkpoint(run_copy: Path) -> None:
    last = snapshot(run_copy)["checkpoints/last.pt"]
    r = train("--out", str(run_copy), "--resume", "--set", "train.steps=4", fsize_kib=120)
    assert_error(r, 1, "last.pt", "File too large")
    after = snapshot(run_copy)
    assert after["checkpoints/last.pt"] == last
    assert not [k for k in after if k.endswith(".tmp")]


def test_wrong_type_in_a_component_option(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert_error(train("--out", str(out), "--set", "model.expert_dim=big"), 2, "model.expert_dim")
    assert not out.exists()  # found before the folder was made


def test_checkpoint_of_another_model(run_copy: Path) -> None:
    import torch

    last = run_copy / "checkpoints" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    ckpt["model"] = {"bogus.weight": torch.zeros(2)}
    torch.save(ckpt, last)
    before = snapshot(run_copy)
    r = train("--out", str(run_copy), "--resume")
    assert_error(r, 2, "last.pt", "does not fit", "Missing key")
    assert snapshot(run_copy) == before


def test_checkpoint_in_torchs_legacy_format(run_copy: Path) -> None:
    import torch

    last = run_copy / "checkpoints" / "last.pt"
    torch.save(torch.load(last, weights_only=True), last, _use_new_zipfile_serialization=False)
    assert_error(train("--out", str(run_copy), "--resume"), 2, "legacy")


@pytest.mark.parametrize("content", ["garbage", "pickle"])
def test_corrupt_checkpoint_never_advises_weights_only_false(run_copy: Path, content) -> None:
    import collections

    import torch

    last = run_copy / "checkpoints" / "last.pt"
    if content == "garbage":
        last.write_bytes(b"not a checkpoint at all")
    else:
        torch.save({"format": "mtopt-checkpoint", "x": collections.Counter("ab")}, last)
    before = snapshot(run_copy)
    line = assert_error(train("--out", str(run_copy), "--resume"), 2, "last.pt")
    assert "weights_only" not in line and "trust" not in line
    assert snapshot(run_copy) == before


def test_incomplete_checkpoint(run_copy: Path) -> None:
    import torch

    torch.save({"format": "mtopt-checkpoint"}, run_copy / "checkpoints" / "last.pt")
    assert_error(train("--out", str(run_copy), "--resume"), 2, "incomplete", "recipe")


# ---------------------------------------------------------------- 4. divergence
def test_pub_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = train("--out", str(out), "--set", "optimizer.lr=1e6", "--set", "train.steps=40",
              "--set", "train.checkpoint_every=1")  # fmt: skip
    line = assert_error(r, 1, "diverged", "was kept")
    assert str(out / "checkpoints" / "last.pt") in line
    import json

    assert json.loads((out / "summary.json").read_text())["status"] == "failed"


def test_ls_divergence_says_truthfully_that_no_checkpoint_exists(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = train("--out", str(out), "--set", "optimizer.lr=1e6", "--set", "train.steps=40",
              "--set", "method.name=ls", "--set", "method.solver=null",
              "--set", "method.solve_every=null", "--set", "optimizer.batch_size=16")  # fmt: skip
    line = assert_error(r, 1, "no checkpoint was written")
    assert "was kept" not in line
    assert not (out / "checkpoints" / "last.pt").exists()


# ---------------------------------------------------------------- 5. data the model cannot hold
def test_numerical_value_overflowing_float32(tmp_path: Path) -> None:
    recipe = _aliexpress(tmp_path / "d", ["1,0.5,1,0", "2,1e39,0,0", "0,0.3,1,1"])
    r = run_cli("train", recipe, "--out", tmp_path / "run", timeout=40)
    assert_error(r, 2, "train.csv", "line 3", "numerical_1", "float32")
    assert not (tmp_path / "run").exists()


def test_outlier_categorical_id_beyond_max_vocab(tmp_path: Path) -> None:
    recipe = _aliexpress(tmp_path / "d", ["1,0.5,1,0", "2000000000,0.1,0,0", "0,0.3,1,1"])
    r = run_cli("train", recipe, "--out", tmp_path / "run", timeout=40)
    assert_error(r, 2, "data.max_vocab", "categorical_1")
    r = run_cli("train", recipe, "--out", tmp_path / "run", "--set", "data.max_vocab=2", timeout=40)
    assert_error(r, 2, "data.max_vocab = 2")


# ---------------------------------------------------------------- 6. the smaller ones
def test_duplicate_yaml_key(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: {name: synthetic-ranking}\ntrain:\n  steps: 3\ntrain:\n  seed: 1\n")
    assert_error(run_cli("train", recipe), 2, "duplicate key 'train'", "line 4")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_recipe_is_refused(tmp_path: Path, text: str) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    assert_error(run_cli("train", recipe, "--out", tmp_path / "run"), 2, "empty recipe")
    assert not (tmp_path / "run").exists()


def test_infinite_lr_names_its_section(tmp_path: Path) -> None:
    line = assert_error(train("--set", "optimizer.lr=.inf"), 2, "optimizer.lr", "finite")
    assert "≥ 0" not in line


def test_stale_tmp_files_are_removed_on_resume(run_copy: Path) -> None:
    stale = run_copy / "checkpoints" / ".last.pt.k9x2a1.tmp"
    stale.write_bytes(b"half a checkpoint")
    mine = run_copy / "checkpoints" / ".mine.tmp"
    mine.write_text("not ours")
    r = train("--out", str(run_copy), "--resume", "--set", "train.steps=3")
    assert r.code == 0, r.err
    assert not stale.exists() and mine.exists()


def test_resume_updates_recipe_yaml(run_copy: Path) -> None:
    r = train("--out", str(run_copy), "--resume", "--set", "train.steps=3")
    assert r.code == 0, r.err
    assert "steps: 3" in (run_copy / "recipe.yaml").read_text()


def test_outputs_follow_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = train("--out", str(out), umask=0o027)
    assert r.code == 0, r.err
    for rel in ("summary.json", "recipe.yaml", "checkpoints/last.pt"):
        assert mode_of(out / rel) == 0o640, rel


def test_unknown_name_suggests_the_closest(tmp_path: Path) -> None:
    assert_error(train("--set", "method.solver=newtn"), 2, "did you mean 'newton'?")


def test_unexpected_exception_is_one_line_with_its_type() -> None:
    from mtopt.cli.contract import describe

    code, msg = describe(ZeroDivisionError("boom\nsecond line"))
    assert code == 1 and "ZeroDivisionError: boom" in msg and "MTOPT_DEBUG=1" in msg
    assert "\n" not in msg


# ---------------------------------------------------------------- the library API
def test_pub_step_on_detached_losses_is_an_error() -> None:
    import torch

    from mtopt.errors import InputError
    from mtopt.optim.pub import PUB

    w, a, b = (torch.nn.Parameter(torch.ones(n)) for n in (3, 1, 1))
    opt = PUB([w], [[a], [b]])
    with pytest.raises(InputError, match="^losses: "):
        opt.step([torch.tensor(1.0), torch.tensor(2.0)])


def test_all_shared_parameters_frozen_says_so() -> None:
    import torch

    from mtopt.errors import InputError
    from mtopt.optim.pub import PUB

    w, a, b = (torch.nn.Parameter(torch.ones(n)) for n in (3, 1, 1))
    w.requires_grad_(False)
    with pytest.raises(InputError, match="frozen"):
        PUB([w], [[a], [b]])


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["optimizer.name=adagrad"], "method.between_solves: 'weighted' is refused with base"),
        (["method.name=pub-clippy"], "method.between_solves: 'weighted' is refused with umm"),
        (["method.embeddings=plain"], "method.embeddings: 'plain': tensors outside D"),
        (["method.weighted_tol=2"], "method.weighted_tol: must be a number in [0, 1]"),
    ],
)
def test_weighted_pub_refusals_name_the_recipe_field(tmp_path: Path, sets, needle) -> None:
    out = tmp_path / "run"
    flags = [x for s in sets for x in ("--set", s)]
    r = train("--out", str(out), "--set", "method.between_solves=weighted", *flags)
    assert_error(r, 2, "quickstart.yaml", needle)
    assert not out.exists()
