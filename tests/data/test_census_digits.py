"""census-income (generated files in the UCI format) and multi-digits."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from mtopt.data.census import CATEGORICAL, COLUMNS, CONTINUOUS, write_synthetic_census_files
from mtopt.errors import InputError
from mtopt.registry import registry


@pytest.fixture(scope="module")
def census_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_census_files(tmp_path_factory.mktemp("census"), 1500, 600, seed=0)


def _raw(path: Path) -> list[list[str]]:
    return [[f.strip() for f in line.split(",")] for line in path.read_text().splitlines()]


def test_census_schema_labels_and_vocab(census_dir: Path) -> None:
    ds = registry.get("dataset", "census-income")(path=str(census_dir))
    s = ds.schema
    assert s.task_names == ["income", "never_married"]
    assert len(COLUMNS) == 42 and s.n_dense == 7 and len(s.cat_cardinalities) == 32
    assert "marital stat" not in CATEGORICAL and "instance weight" not in CATEGORICAL
    train = _raw(census_dir / "census-income.data")
    assert all(len(r) == 42 for r in train)
    # vocabulary = distinct train values + 1 (id 0 for unseen values)
    expected = [len({r[COLUMNS.index(c)] for r in train}) + 1 for c in CATEGORICAL]
    assert s.cat_cardinalities == expected
    a = ds.arrays("train")
    income = np.array([r[-1] == "50000+." for r in train], dtype=np.float32)
    never = np.array([r[7] == "Never married" for r in train], dtype=np.float32)
    np.testing.assert_array_equal(a["labels"][:, 0], income)
    np.testing.assert_array_equal(a["labels"][:, 1], never)
    # dense: standardised on the train file
    np.testing.assert_allclose(a["dense"].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(a["dense"].std(0), 1.0, atol=1e-3)
    age = np.array([float(r[0]) for r in train])
    np.testing.assert_allclose(
        a["dense"][:, CONTINUOUS.index("age")], (age - age.mean()) / age.std(), atol=1e-5
    )
    # the test file is split 1:1 into val and test
    assert ds.num_rows("train") == 1500 and ds.num_rows("val") + ds.num_rows("test") == 600
    assert 220 < ds.num_rows("val") < 380
    b = next(ds.batches("val", 64, shuffle=True, seed=0))
    assert b["cat"].dtype == torch.int64 and b["dense"].shape == (64, 7)


def test_census_unseen_value_maps_to_zero_and_gz(tmp_path: Path, census_dir: Path) -> None:
    shutil.copy(census_dir / "census-income.data", tmp_path / "census-income.data")
    rows = _raw(census_dir / "census-income.test")
    j = COLUMNS.index("country of birth self")
    rows[0][j] = "Atlantis"
    text = "\n".join(", ".join(r) for r in rows) + "\n"
    with gzip.open(tmp_path / "census-income.test.gz", "wt") as fh:
        fh.write(text)
    ds = registry.get("dataset", "census-income")(path=str(tmp_path), val_from="train")
    t = ds.arrays("test")
    assert t["cat"][0, CATEGORICAL.index("country of birth self")] == 0
    assert (t["cat"][1:, CATEGORICAL.index("country of birth self")] > 0).all()
    assert ds.num_rows("test") == 600 and ds.num_rows("train") + ds.num_rows("val") == 1500


def test_census_bad_input(tmp_path: Path, census_dir: Path) -> None:
    build = registry.get("dataset", "census-income")
    with pytest.raises(InputError, match="census-income.data: file not found"):
        build(path=str(tmp_path))
    shutil.copy(census_dir / "census-income.test", tmp_path / "census-income.test")
    rows = _raw(census_dir / "census-income.data")
    bad = [list(r) for r in rows[:20]]
    bad[4][-1] = "maybe."
    (tmp_path / "census-income.data").write_text("\n".join(", ".join(r) for r in bad) + "\n")
    with pytest.raises(InputError, match=r"census-income.data: row 5: column income"):
        build(path=str(tmp_path))
    bad[4] = bad[4][:30]
    (tmp_path / "census-income.data").write_text("\n".join(", ".join(r) for r in bad) + "\n")
    with pytest.raises(InputError, match=r"census-income.data: line 5: expected 42"):
        build(path=str(tmp_path))
    with pytest.raises(InputError, match="data.tasks"):
        build(path=str(tmp_path), tasks=["x"])


@pytest.mark.parametrize("column", ["age", "capital gains"])
def test_census_value_overflowing_float32(tmp_path: Path, column: str) -> None:
    """A dense value the model cannot hold names the file, the line (blank lines counted) and
    the column, like the AliExpress reader; also in a log-scaled column (log1p would hide it)."""
    folder = write_synthetic_census_files(tmp_path, 40, 20, seed=0)
    path = folder / "census-income.data"
    rows = _raw(path)
    rows[6][COLUMNS.index(column)] = "1e40"
    path.write_text("\n".join(", ".join(r) for r in rows[:3]) + "\n\n"
                    + "\n".join(", ".join(r) for r in rows[3:]) + "\n")  # fmt: skip
    build = registry.get("dataset", "census-income")
    with pytest.raises(
        InputError, match=rf"census-income.data: line 8: column '{column}': .*float32"
    ):
        build(path=str(folder))


def test_digits_composition_labels_and_disjoint_pools() -> None:
    ds = registry.get("dataset", "multi-digits")(n_train=500, n_val=200, n_test=200, seed=1)
    s = ds.schema
    assert s.cat_cardinalities == [] and s.n_dense == 128
    assert s.task_names == ["left_ge5", "right_ge5"]
    digits = load_digits()
    sources = {}
    for split in ("train", "val", "test"):
        a = ds.arrays(split)
        src, dig = a["source"], a["digits"]
        np.testing.assert_array_equal(dig, digits.target[src])
        np.testing.assert_array_equal(a["labels"], (dig >= 5).astype(np.float32))
        img = a["dense"].reshape(-1, 8, 16)
        np.testing.assert_allclose(img[:, :, :8], digits.images[src[:, 0]] / 16.0, atol=1e-6)
        np.testing.assert_allclose(img[:, :, 8:], digits.images[src[:, 1]] / 16.0, atol=1e-6)
        sources[split] = set(src.ravel().tolist())
    assert not sources["train"] & sources["val"] and not sources["train"] & sources["test"]
    assert not sources["val"] & sources["test"]
    b = next(ds.batches("test", 32))
    assert b["cat"].shape == (32, 0) and b["dense"].dtype == torch.float32


def test_digits_odd_task_overlap_and_determinism() -> None:
    build = registry.get("dataset", "multi-digits")
    ds = build(n_train=100, n_val=10, n_test=10, task="odd", overlap=2)
    a = ds.arrays("train")
    assert ds.schema.n_dense == 8 * 14 and ds.schema.task_names == ["left_odd", "right_odd"]
    np.testing.assert_array_equal(a["labels"], (a["digits"] % 2).astype(np.float32))
    again = build(n_train=100, n_val=10, n_test=10, task="odd", overlap=2)
    x = torch.cat([b["dense"] for b in ds.batches("train", 16, shuffle=True, seed=3)])
    y = torch.cat([b["dense"] for b in again.batches("train", 16, shuffle=True, seed=3)])
    assert torch.equal(x, y)
    with pytest.raises(InputError, match="data.task"):
        build(task="sum")
