"""The leakage guard: a label copied into a dense or a categorical column of an AliExpress-format
file stops the run before anything is written, naming the column and the option; the option
lets it train. Unit checks of the detector on constructed leaks and on honest features."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mtopt.config import recipe_from_dict
from mtopt.data.aliexpress import write_synthetic_aliexpress_csv
from mtopt.errors import InputError
from mtopt.train.leakage import MIN_CLASS, allowed, find_leaks
from mtopt.train.trainer import Trainer


def _files(folder: Path, copy: tuple[str, str] | None) -> Path:
    """train.csv / test.csv (3 categorical, 4 numerical columns), with label ``copy[0]``
    copied into column ``copy[1]`` of both files."""
    folder.mkdir()
    for name, rows, seed in (("train.csv", 700, 0), ("test.csv", 200, 1)):
        path = folder / name
        write_synthetic_aliexpress_csv(path, rows, seed, n_cat=3, n_num=4, loss_ratio=None)
        if copy is None:
            continue
        with open(path, newline="") as fh:
            table = list(csv.reader(fh))
        src, dst = table[0].index(copy[0]), table[0].index(copy[1])
        for row in table[1:]:
            row[dst] = row[src]
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows(table)
    return folder


def _recipe(folder: Path, **data) -> dict:
    return {
        "data": {"name": "aliexpress", "path": str(folder), "chunk_rows": 256, **data},
        "model": {"name": "mmoe", "n_experts": 2, "expert_dim": 8, "embed_dim": 4},
        "method": {"name": "ls"},
        "optimizer": {"lr": 0.01, "batch_size": 128},
        "train": {"steps": 4, "threads": 1},
        "output": {"plots": False, "progress": False},
    }


def _train(raw: dict, out: Path) -> dict:
    return Trainer(recipe_from_dict(raw, "leak.yaml"), out, source="leak.yaml").run()


@pytest.mark.parametrize(
    ("label", "column", "kind"),
    [("click", "numerical_2", "dense"), ("conversion", "categorical_3", "categorical")],
)
def test_a_label_in_the_features_stops_the_run_before_any_output(
    tmp_path: Path, label: str, column: str, kind: str
) -> None:
    folder = _files(tmp_path / "data", (label, column))
    out = tmp_path / "run"
    with pytest.raises(InputError) as err:
        _train(_recipe(folder), out)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("leak.yaml: data.allow_leakage: ")
    assert f"{kind} column {column} " in msg and f"task {label!r}" in msg
    assert f"data.allow_leakage: [{column}]" in msg
    assert not out.exists()  # checked before the run folder is made
    # the option lets it train (the column named, or everything)
    for allow in ([column], True):
        s = _train(_recipe(folder, allow_leakage=allow), out / str(allow))
        assert s["status"] == "ok" and s["steps"] == 4


def test_honest_files_train_and_the_option_is_checked(tmp_path: Path) -> None:
    folder = _files(tmp_path / "data", None)
    assert _train(_recipe(folder), tmp_path / "run")["status"] == "ok"
    with pytest.raises(InputError, match=r"data.allow_leakage: unknown column\(s\) numerical_9"):
        _train(_recipe(folder, allow_leakage=["numerical_9"]), tmp_path / "r2")
    with pytest.raises(InputError, match=r"data.allow_leakage: true, false or a list"):
        allowed(3, ["a"], "leak.yaml")


def test_detector_on_constructed_leaks_and_honest_columns() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    honest = rng.normal(size=n)
    y = (honest + rng.normal(size=n) > 1.0).astype(np.float32)  # a strong, honest feature
    few = np.zeros(n, np.float32)
    few[: MIN_CLASS - 5] = 1  # too few positives for a separation test
    labels = np.stack([y, few], 1)
    dense = np.stack(
        [
            honest,
            5.0 - 3.0 * y,  # a recoded label
            y + 0.4 * rng.random(n),  # separates the label, not equal to it
            np.where(few == 1, 2.0, 0.0) + rng.random(n),  # separates 'few' (too few rows)
        ],
        1,
    )
    cat = np.stack(
        [
            rng.integers(0, 50, n),  # honest ids
            10 * y.astype(int) + rng.integers(0, 5, n),  # the value determines the label
            np.arange(n),  # unique ids: no evidence
        ],
        1,
    )
    leaks = find_leaks(
        cat, dense, labels, ["y", "few"], ["c0", "c1", "c2"], ["d0", "d1", "d2", "d3"]
    )
    got = {(k.column, k.task) for k in leaks}
    assert got == {("d1", "y"), ("d2", "y"), ("c1", "y")}
    finding = {k.column: k.finding for k in leaks}
    assert finding["d1"].startswith("encodes") and "AUC 1.0000" in finding["d2"]
    # an exact copy is found whatever the class counts
    dense_copy = np.stack([honest, few], 1)
    leaks = find_leaks(cat[:, :0], dense_copy, labels, ["y", "few"], [], ["d0", "d1"])
    assert [(k.column, k.task) for k in leaks] == [("d1", "few")]
