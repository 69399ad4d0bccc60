"""aliexpress: the polars and numpy CSV engines give the same rows, caches and errors."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from mtopt.data.aliexpress import build
from mtopt.data.aliexpress.fastparse import parse_block, polars_available
from mtopt.data.aliexpress.fixture import write_synthetic_aliexpress_csv
from mtopt.errors import InputError

if not polars_available():  # absent, or installed but broken (pytest.importorskip: absent only)
    pytest.skip("polars does not import (pip install 'mtopt[polars]')", allow_module_level=True)

N_CAT, N_NUM = 16, 63
HEADER = (
    ["search_id"]
    + [f"categorical_{i + 1}" for i in range(N_CAT)]
    + [f"numerical_{i + 1}" for i in range(N_NUM)]
    + ["click", "conversion"]
)


def _halfway_float32(rng: np.random.Generator, n: int) -> list[str]:
    """float64 values at, just above and just below the midpoint of two float32 neighbours
    (where parsing straight to float32 and float64-then-float32 can differ)."""
    x = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(np.float32)
    up = np.nextafter(x, np.float32(np.inf))
    mid = (x.astype(np.float64) + up.astype(np.float64)) / 2
    out = []
    for m in mid:
        out += [repr(float(m)), repr(float(np.nextafter(m, np.inf))), f"{m:.12g}"]
    return out


def _awkward_value(rng: np.random.Generator) -> str:
    """One numerical value, in one of many spellings numpy accepts."""
    x = float(rng.standard_normal() * 10.0 ** int(rng.integers(-12, 12)))
    k = int(rng.integers(0, 14))
    return [
        f"{x:.17g}",
        f"{x:.6g}",
        f"{x:e}",
        f"{x:E}".replace("E+", "E"),
        repr(float(np.float32(x))),
        "-0",
        "-0.0",
        "+0.5",
        ".25",
        "7.",
        "00012",
        f"{int(rng.integers(0, 2**62))}{int(rng.integers(0, 10**9))}",  # a large int
        f"{rng.choice(['', '-'])}{rng.integers(1, 9)}e-{rng.integers(300, 330)}",  # subnormal
        "3.4028234663852886e38",  # float32 max
    ][k]


def _write_awkward(path: Path, rows: int, seed: int, crlf: bool = False) -> None:
    """An AliExpress-shaped CSV full of awkward but valid values; ends with an empty line."""
    rng = np.random.default_rng(seed)
    half = _halfway_float32(rng, rows * 2)
    nl = "\r\n" if crlf else "\n"
    lines = [",".join(HEADER)]
    for r in range(rows):
        cats = [str(int(rng.integers(0, 50))) for _ in range(N_CAT)]
        cats[0] = rng.choice(["0", "-0", "2147483646", "3.0", "1e3", "007", "12E0"])
        nums = [_awkward_value(rng) for _ in range(N_NUM)]
        nums[: len(half[6 * r : 6 * r + 6])] = half[6 * r : 6 * r + 6]
        labels = [rng.choice(["0", "1", "1.0", "0e0", "-0", "1E0"]) for _ in range(2)]
        sid = str(int(rng.integers(0, 2**63 - 1)))
        lines.append(",".join([sid, *cats, *nums, *labels]))
    path.write_bytes((nl.join(lines) + nl + nl).encode())


def _pair(src: Path, tmp: Path, **kw) -> tuple:
    """The same folder built with each engine (in two copies: the caches live beside it)."""
    out = []
    for engine in ("numpy", "polars"):
        d = tmp / engine
        shutil.copytree(src, d)
        out.append((d, build(path=str(d), csv_engine=engine, **kw)))
    return tuple(out)


def _all_blocks(ds) -> list[tuple[np.ndarray, ...]]:
    return [ds._parse_csv(k, b) for k, f in ds.files.items() for b in range(f.n_blocks)]


def test_engines_agree_on_the_group_column(tmp_path: Path) -> None:
    """``data.group_column: search_id`` (GAUC's groups) reads the same ids with both engines,
    into the cache and from the CSV directly."""
    src = tmp_path / "src"
    src.mkdir()
    write_synthetic_aliexpress_csv(
        src / "train.csv", 300, 2, n_cat=3, n_num=4, impressions_per_search=4
    )
    write_synthetic_aliexpress_csv(
        src / "test.csv", 100, 3, n_cat=3, n_num=4, impressions_per_search=4
    )
    (dn, a), (dp, b) = _pair(src, tmp_path, chunk_rows=97, group_column="search_id")
    for name in ("train.csv", "test.csv"):
        x, y = ((d / (name + ".mtopt-cache.bin")).read_bytes() for d in (dn, dp))
        assert x == y, name
    for xs, ys in zip(_all_blocks(a), _all_blocks(b)):
        assert xs[3] is not None and xs[3].tobytes() == ys[3].tobytes()
        assert xs[3].dtype == ys[3].dtype


@pytest.mark.parametrize("crlf", [False, True])
def test_engines_give_identical_rows_and_caches(tmp_path: Path, crlf: bool) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write_awkward(src / "train.csv", 700, 0, crlf)
    _write_awkward(src / "test.csv", 150, 1, crlf)
    (dn, a), (dp, b) = _pair(src, tmp_path, chunk_rows=97)
    assert (a.csv_engine, b.csv_engine) == ("numpy", "polars")
    assert a.schema.cat_cardinalities == b.schema.cat_cardinalities
    for name in ("train.csv", "test.csv"):
        for suffix in (".mtopt-cache.bin", ".mtopt-index.json"):
            x, y = (d / (name + suffix) for d in (dn, dp))
            assert x.read_bytes() == y.read_bytes(), name + suffix
    assert b.files["train"].n_rows == 700 and b.files["test"].n_rows == 150
    # the block parser itself (the CSV-direct path), array by array
    blocks = list(zip(_all_blocks(a), _all_blocks(b)))
    assert len(blocks) == 8 + 2
    for xs, ys in blocks:
        for x, y in zip(xs, ys):
            if x is None or y is None:  # the group ids, absent without data.group_column
                assert x is None and y is None
                continue
            assert x.dtype == y.dtype and np.array_equal(x, y)
            assert x.tobytes() == y.tobytes()  # negative zeros too
    assert sum(f.numpy_blocks for f in b.files.values()) == 0  # all of it went through polars
    dense = np.concatenate([x[1] for x, _ in blocks])
    assert (np.signbit(dense) & (dense == 0)).any()  # the file did hold negative zeros


def test_a_valid_file_polars_does_not_take_is_handed_to_numpy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _write_awkward(src / "train.csv", 60, 2)
    text = (src / "train.csv").read_text().splitlines()
    text[5] = text[5].replace(",", ", ", 3)  # spaces: numpy strips them, polars' grammar not
    text[40] += "\r"  # a stray carriage return in an LF file: numpy strips it too
    (src / "train.csv").write_bytes(("\n".join(text) + "\n").encode())
    _write_awkward(src / "test.csv", 20, 3)
    with pytest.warns(UserWarning, match=r"train\.csv: 2 of 4 blocks were parsed by numpy"):
        (dn, a), (dp, b) = _pair(src, tmp_path, chunk_rows=16)
    assert (dn / "train.csv.mtopt-cache.bin").read_bytes() == (
        dp / "train.csv.mtopt-cache.bin"
    ).read_bytes()
    assert b.files["train"].numpy_blocks == 2 and b.files["test"].numpy_blocks == 0


def test_float_parsing_rounds_like_loadtxt() -> None:
    rng = np.random.default_rng(5)
    values = _halfway_float32(rng, 4000) + [_awkward_value(rng) for _ in range(12000)]
    values += [f"{rng.integers(0, 10**8)}.{rng.integers(0, 10**12):012d}e{rng.integers(-40, 39)}"
               for _ in range(4000)]  # fmt: skip
    values = values[: len(values) // 4 * 4]
    text = "\n".join(",".join(values[i : i + 4]) for i in range(0, len(values), 4))
    ref = np.loadtxt(io.StringIO(text), delimiter=",", usecols=[3, 0, 2], ndmin=2, comments=None)
    got = parse_block(text.encode(), 4, [3, 0, 2], ",", len(values) // 4)
    assert got is not None and got.dtype == np.float64 and got.flags.c_contiguous
    assert got.tobytes() == ref.tobytes()
    with np.errstate(over="ignore"):
        assert got.astype(np.float32).tobytes() == ref.astype(np.float32).tobytes()


def test_random_fields_accepted_alike() -> None:
    """Random strings over the plain number grammar: a field numpy (Python's float parser)
    accepts is parsed to the same float64 by polars, and a block with a field numpy refuses
    is handed back (``None``)."""
    rng = np.random.default_rng(11)
    chars = np.array(list("0123456789" * 3 + ".eE+-"))
    fields = ["".join(rng.choice(chars, int(rng.integers(1, 10)))) for _ in range(20000)]
    good, bad = [], []
    for s in fields:
        try:
            float(s)
        except ValueError:
            bad.append(s)
        else:
            good.append(s)
    got = parse_block(("\n".join(good)).encode(), 1, [0], ",", len(good))
    ref = np.loadtxt(io.StringIO("\n".join(good)), delimiter=",", ndmin=2, comments=None)
    assert got is not None and got.tobytes() == ref.tobytes()
    assert len(bad) > 300
    for s in bad[:300]:
        assert parse_block(f"1\n{s}\n2".encode(), 1, [0], ",", 3) is None, s


@pytest.mark.parametrize(
    "field", ["", ".", "-", "e5", "1e", "1e+", "1-2", "1..2", "--1", "+-1", "1e5e5", "1.2.3"]
)
def test_malformed_numbers_go_to_numpy(field: str) -> None:
    raw = f"1,2,3\n4,{field},6\n".encode()
    assert parse_block(raw, 3, [0, 1, 2], ",", 2) is None


SMALL = ["search_id", "categorical_1", "categorical_2", "numerical_1", "numerical_2", "click",
         "conversion"]  # fmt: skip
GOOD_ROW = ["9", "1", "0", "0.5", "-2e-3", "1", "0"]

BAD = {
    "dense text": (4, "abc"),
    "dense nan": (3, "nan"),
    "dense NaN": (4, "NaN"),
    "dense inf": (3, "inf"),
    "dense overflow": (4, "1e400"),
    "dense float32 overflow": (3, "3.5e38"),
    "dense empty": (4, ""),
    "dense space": (3, " "),
    "dense two dots": (4, "1.5.2"),
    "dense double sign": (3, "--1"),
    "dense hex": (4, "0x10"),
    "dense quoted": (3, '"1.5"'),
    "cat negative": (1, "-1"),
    "cat fraction": (2, "1.5"),
    "cat too large": (1, "2147483647"),
    "cat huge": (2, "1e10"),
    "cat nan": (1, "nan"),
    "cat negative fraction": (1, "-0.5"),
    "label two": (5, "2"),
    "label half": (6, "0.5"),
    "label negative": (5, "-1"),
    "label nan": (6, "nan"),
    "label inf": (5, "-inf"),
}


def _small(path: Path, bad_line: int, row: list[str] | None) -> None:
    """13 lines (a header and 12 good rows), line ``bad_line`` replaced by ``row``; with
    ``row=None`` and ``bad_line`` set, a blank line is inserted before that line instead."""
    lines = [",".join(SMALL)] + [",".join(GOOD_ROW)] * 12
    if row is not None:
        lines[bad_line - 1] = ",".join(row)
    elif bad_line:
        lines.insert(bad_line - 1, "")
    path.write_text("\n".join(lines) + "\n")


def _message(folder: Path, engine: str, **kw) -> str:
    for p in folder.glob("*.mtopt-*"):
        p.unlink()
    with pytest.raises(InputError) as info:
        ds = build(path=str(folder), csv_engine=engine, chunk_rows=4, **kw)
        for split in ("train", "test"):
            for _ in ds.batches(split, 5):
                pass
    return str(info.value)


def _bad_cases() -> dict[str, list[str] | None]:
    cases: dict[str, list[str] | None] = {}
    for name, (col, value) in BAD.items():
        row = list(GOOD_ROW)
        row[col] = value
        cases[name] = row
    cases.update(
        {
            "too few columns": GOOD_ROW[:-2],
            "used column missing": GOOD_ROW[:3],
            "blank line inside": None,
            "non-ascii": [*GOOD_ROW[:3], "0,5é", *GOOD_ROW[4:]],
            "semicolons": [";".join(GOOD_ROW)],
        }
    )
    return cases


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("name", list(_bad_cases()))
def test_bad_files_give_the_same_message(tmp_path: Path, name: str, binary: bool) -> None:
    _small(tmp_path / "train.csv", 10, _bad_cases()[name])  # line 10: in the third block
    _small(tmp_path / "test.csv", 0, None)
    messages = {e: _message(tmp_path, e, binary_cache=binary) for e in ("numpy", "polars")}
    assert messages["numpy"] == messages["polars"]
    assert "train.csv: line" in messages["numpy"]


def test_id_beyond_a_given_cardinality_same_message(tmp_path: Path) -> None:
    _small(tmp_path / "train.csv", 7, ["9", "5", "0", "0.5", "1", "1", "0"])
    _small(tmp_path / "test.csv", 0, None)
    for binary in (True, False):
        kw = {"cat_cardinalities": [4, 2], "binary_cache": binary}
        messages = {e: _message(tmp_path, e, **kw) for e in ("numpy", "polars")}
        assert messages["numpy"] == messages["polars"]
        assert "id 5 >= data.cat_cardinalities[0]" in messages["numpy"]


def test_column_order_and_a_column_used_twice() -> None:
    raw = b"1,2,3,4\n5,6,7,8\n"
    for use in ([3, 1, 3], [2, 0], [0, 1, 2, 3]):
        ref = np.loadtxt(io.StringIO(raw.decode()), delimiter=",", usecols=use, ndmin=2)
        got = parse_block(raw, 4, use, ",", 2)
        assert got is not None and got.flags.c_contiguous and got.tobytes() == ref.tobytes()
