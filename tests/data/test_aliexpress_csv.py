"""aliexpress: CSV schema, streaming, caches, splits and bad-input errors."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mtopt.data import aliexpress
from mtopt.data.aliexpress import AliExpress, CsvFile, build, write_synthetic_aliexpress_csv
from mtopt.errors import InputError
from mtopt.registry import registry


def _folder(tmp_path: Path, n_train: int = 600, n_test: int = 200, **kw) -> Path:
    write_synthetic_aliexpress_csv(tmp_path / "train.csv", n_train, seed=0, **kw)
    write_synthetic_aliexpress_csv(tmp_path / "test.csv", n_test, seed=1, **kw)
    return tmp_path


def _csv_rows(path: Path) -> tuple[list[str], np.ndarray]:
    """Independent reference: the csv module, everything as float64."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def _rows(batches) -> np.ndarray:
    out = [
        torch.cat([b["cat"].double(), b["dense"].double(), b["labels"].double()], 1)
        for b in batches
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 81))


def _sorted(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("ali"))


def test_file_schema_and_schema(folder: Path) -> None:
    header, _ = _csv_rows(folder / "train.csv")
    assert header[0] == "search_id" and header[1] == "categorical_1"
    assert header[16] == "categorical_16" and header[17] == "numerical_1"
    assert header[-3] == "numerical_63" and header[-2:] == ["click", "conversion"]
    ds = registry.get("dataset", "aliexpress")(path=str(folder), chunk_rows=128)
    s = ds.schema
    assert s.task_names == ["click", "conversion"] and s.n_dense == 63
    _, tr = _csv_rows(folder / "train.csv")
    _, te = _csv_rows(folder / "test.csv")
    expected = np.maximum(tr[:, 1:17].max(0), te[:, 1:17].max(0)).astype(int) + 1
    assert s.cat_cardinalities == expected.tolist()


@pytest.mark.parametrize("binary", [True, False])
def test_train_and_val_partition_the_train_file_in_order(tmp_path: Path, binary: bool) -> None:
    d = _folder(tmp_path)
    ds = build(path=str(d), chunk_rows=100, binary_cache=binary, val_fraction=0.25)
    _, ref = _csv_rows(d / "train.csv")
    ref = ref[:, 1:].copy()
    ref[:, 16:79] = ref[:, 16:79].astype(np.float32)
    train = _rows(ds.batches("train", 64))
    val = _rows(ds.batches("val", 64))
    assert len(train) == ds.num_rows("train") and len(val) == ds.num_rows("val")
    assert len(train) + len(val) == len(ref)
    assert 0.15 < len(val) / len(ref) < 0.35
    np.testing.assert_array_equal(_sorted(np.concatenate([train, val])), _sorted(ref))
    # unshuffled batches keep the file order within each split
    pos = {tuple(r): i for i, r in enumerate(ref)}
    for part in (train, val):
        idx = [pos[tuple(r)] for r in part]
        assert idx == sorted(idx)
    _, te = _csv_rows(d / "test.csv")
    test = _rows(ds.batches("test", 1000))
    assert len(test) == len(te)


def test_binary_cache_and_csv_give_identical_batches(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    a = build(path=str(d), chunk_rows=64, binary_cache=True)
    b = build(path=str(d), chunk_rows=64, binary_cache=False)
    assert (d / "train.csv.mtopt-cache.bin").is_file()
    for split in ("train", "val", "test"):
        x = _rows(a.batches(split, 50, shuffle=True, seed=2, epoch=1))
        y = _rows(b.batches(split, 50, shuffle=True, seed=2, epoch=1))
        np.testing.assert_array_equal(x, y)


def test_shuffle_is_seeded_and_streaming_memory_is_bounded(folder: Path) -> None:
    ds = build(path=str(folder), chunk_rows=32, shuffle_buffer=100)
    plain = _rows(ds.batches("train", 16))
    one = _rows(ds.batches("train", 16, shuffle=True, seed=0, epoch=0))
    stats = dict(ds.stats)
    again = _rows(ds.batches("train", 16, shuffle=True, seed=0, epoch=0))
    other = _rows(ds.batches("train", 16, shuffle=True, seed=0, epoch=1))
    np.testing.assert_array_equal(one, again)
    assert not np.array_equal(one, other) and not np.array_equal(one, plain)
    np.testing.assert_array_equal(_sorted(one), _sorted(plain))
    np.testing.assert_array_equal(_sorted(other), _sorted(plain))
    # never more than one block parsed at a time, never more than buffer + block held
    assert 0 < stats["max_block_rows"] <= 32
    assert stats["max_buffer_rows"] <= 100 + 32


def test_csv_reader_parses_one_block_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _folder(tmp_path)
    sizes: list[int] = []
    original = CsvFile.read_block

    def spy(self: CsvFile, b: int, usecols: list[int]) -> np.ndarray:
        arr = original(self, b, usecols)
        sizes.append(arr.shape[0])
        return arr

    monkeypatch.setattr(CsvFile, "read_block", spy)
    ds = build(path=str(d), chunk_rows=50, binary_cache=False)
    n = sum(len(b["labels"]) for b in ds.batches("train", 1000, shuffle=True))
    assert n == ds.num_rows("train")
    assert sizes and max(sizes) <= 50


def test_index_cache_is_reused_and_invalidated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _folder(tmp_path)
    first = build(path=str(d), chunk_rows=64)
    assert (d / "train.csv.mtopt-index.json").is_file()

    def boom(self: CsvFile) -> dict:
        raise AssertionError("scanned again")

    monkeypatch.setattr(CsvFile, "_scan", boom)
    second = build(path=str(d), chunk_rows=64)  # from the caches: no scan
    assert second.schema.cat_cardinalities == first.schema.cat_cardinalities
    monkeypatch.undo()
    with open(d / "train.csv", "a") as fh:  # the file changes: caches are rebuilt
        fh.write("999999," + ",".join(["7"] * 16) + "," + ",".join(["0.5"] * 63) + ",1,1\n")
    third = build(path=str(d), chunk_rows=64)
    assert third.files["train"].n_rows == first.files["train"].n_rows + 1
    assert third.schema.cat_cardinalities[0] == max(8, first.schema.cat_cardinalities[0])


def test_val_from_test(folder: Path) -> None:
    ds = build(path=str(folder), val_from="test", val_fraction=0.5)
    assert ds.num_rows("train") == 600
    assert ds.num_rows("val") + ds.num_rows("test") == 200
    assert 60 < ds.num_rows("val") < 140


def test_rename_maps_a_variant_header(tmp_path: Path) -> None:
    d = _folder(tmp_path)
    for name in ("train.csv", "test.csv"):
        text = (d / name).read_text().replace(",click,conversion\n", ",is_click,is_buy\n", 1)
        (d / name).write_text(text)
    with pytest.raises(InputError, match=r"train\.csv: missing column\(s\) click, conversion"):
        build(path=str(d))
    ds = build(path=str(d), rename={"is_click": "click", "is_buy": "conversion"})
    assert ds.num_rows("test") == 200


def test_single_class_task_is_allowed(tmp_path: Path) -> None:
    d = tmp_path
    header = ["search_id", "categorical_1", "numerical_1", "click", "conversion"]
    rows = [[i, i % 3, i / 10, i % 2, 0] for i in range(40)]
    for name in ("train.csv", "test.csv"):
        with open(d / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    ds = build(path=str(d))
    y = torch.cat([b["labels"] for b in ds.batches("test", 16)])
    assert y[:, 1].sum() == 0 and ds.schema.cat_cardinalities == [3]


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(str(x) for x in r) + "\n")


HEADER = ["search_id", "categorical_1", "categorical_2", "numerical_1", "click", "conversion"]
GOOD = [[i, i % 4, i % 2, 0.5 * i, i % 2, 0] for i in range(10)]


@pytest.mark.parametrize(
    "row, pattern",
    [
        ([3, 1, 0, 0.5, 2, 0], r"train\.csv: line 5: column click: label 2 outside \{0, 1\}"),
        ([3, 1, 0, "nan", 1, 0], r"train\.csv: line 5: column numerical_1: NaN"),
        ([3, 1, 0, "", 1, 0], r"train\.csv: line 5:.*could not convert"),
        ([3, -1, 0, 0.5, 1, 0], r"train\.csv: line 5: column categorical_1: .*integers >= 0"),
        ([3, 1.5, 0, 0.5, 1, 0], r"train\.csv: line 5: column categorical_1: .*integers"),
        ([3, 1, 0, 0.5, 1], r"train\.csv: line 5:.*columns"),
    ],
)
@pytest.mark.parametrize("binary", [True, False])
def test_bad_rows_name_file_line_and_problem(
    tmp_path: Path, row: list, pattern: str, binary: bool
) -> None:
    rows = [list(r) for r in GOOD]
    rows[3] = row  # file line 5 (header is line 1)
    _write(tmp_path / "train.csv", HEADER, rows)
    _write(tmp_path / "test.csv", HEADER, GOOD)
    with pytest.raises(InputError, match=pattern):
        ds = build(path=str(tmp_path), binary_cache=binary)
        for _ in ds.batches("train", 4):
            pass


def test_id_beyond_given_cardinality(tmp_path: Path) -> None:
    _write(tmp_path / "train.csv", HEADER, GOOD)
    _write(tmp_path / "test.csv", HEADER, GOOD)
    with pytest.raises(InputError, match=r"categorical_1: id 3 >= data.cat_cardinalities\[0\]"):
        ds = build(path=str(tmp_path), cat_cardinalities=[3, 2], binary_cache=False)
        for _ in ds.batches("train", 4):
            pass
    ds = build(path=str(tmp_path), cat_cardinalities=[4, 2])
    assert ds.schema.cat_cardinalities == [4, 2]


def test_missing_files_and_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="data.path"):
        build()
    with pytest.raises(InputError, match=r"train\.csv: file not found"):
        build(path=str(tmp_path))
    _write(tmp_path / "train.csv", HEADER[:-1], [r[:-1] for r in GOOD])
    _write(tmp_path / "test.csv", HEADER, GOOD)
    with pytest.raises(InputError, match=r"train\.csv: missing column\(s\) conversion"):
        build(path=str(tmp_path))
    with pytest.raises(InputError, match="data.shuffle_buf"):
        build(path=str(tmp_path), shuffle_buf=3)


def test_read_only_folder_falls_back_to_csv(tmp_path: Path) -> None:
    d = _folder(tmp_path, 100, 50)
    if os.geteuid() == 0:
        # root ignores permissions: simulate the failure instead
        def deny(*a, **k):
            raise PermissionError("read-only")

        mp = pytest.MonkeyPatch()
        mp.setattr(aliexpress.parse, "atomic_write", deny)
        mp.setattr(aliexpress.index, "atomic_write_json", deny)
    else:
        os.chmod(d, 0o555)
        mp = None
    try:
        with pytest.warns(UserWarning, match="cannot write"):
            ds = build(path=str(d))
        assert sum(len(b["labels"]) for b in ds.batches("test", 64)) == 50
        assert isinstance(ds, AliExpress) and not ds._binary
    finally:
        if mp is not None:
            mp.undo()
        else:
            os.chmod(d, 0o755)


def test_csv_engine_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mtopt.data.aliexpress import fastparse

    _write(tmp_path / "train.csv", HEADER, GOOD)
    _write(tmp_path / "test.csv", HEADER, GOOD)
    with pytest.raises(InputError, match=r"^data\.csv_engine: one of auto, polars, numpy, got"):
        build(path=str(tmp_path), csv_engine="pandas")
    assert build(path=str(tmp_path), csv_engine="numpy").csv_engine == "numpy"
    monkeypatch.setattr(fastparse, "polars_available", lambda: False)
    with pytest.raises(InputError) as info:
        build(path=str(tmp_path), csv_engine="polars")
    msg = str(info.value)
    assert msg.startswith("data.csv_engine: 'polars' is unavailable") and "\n" not in msg
    assert "pip install 'mtopt[polars]'" in msg
    ds = build(path=str(tmp_path), csv_engine="auto")  # auto: numpy without polars
    assert ds.csv_engine == "numpy" and ds.files["train"].engine == "numpy"
