"""Checkpoint encoding (weights-only loadable, atomic) and the AUC metric."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtopt.errors import InputError, RunError
from mtopt.train.checkpoint import (
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from mtopt.train.metrics import SingleClassWarning, mean_or_none, task_auc


def test_roundtrip_weights_only(tmp_path: Path) -> None:
    state = {
        "t": torch.arange(5.0),
        "np": np.arange(6, dtype=np.float64).reshape(2, 3),
        "scalar": np.float32(2.5),
        "tup": (1, "a", None, True),
        "nested": [{"x": np.int64(7)}],
        "opt": torch.optim.Adam([torch.nn.Parameter(torch.ones(2))]).state_dict(),
    }
    p = save_checkpoint(tmp_path / "c.pt", state)
    torch.load(p, weights_only=True)  # loads without any allow-listing
    back = load_checkpoint(p)
    assert torch.equal(back["t"], state["t"])
    assert isinstance(back["np"], np.ndarray) and np.array_equal(back["np"], state["np"])
    assert back["scalar"] == state["scalar"] and back["scalar"].dtype == np.float32
    assert back["tup"] == state["tup"]
    assert back["nested"][0]["x"] == 7 and isinstance(back["nested"][0]["x"], np.int64)


def test_refuses_objects_with_their_path(tmp_path: Path) -> None:
    class Thing:
        pass

    with pytest.raises(RunError, match=r"state.method.solver: a Thing cannot be stored"):
        save_checkpoint(tmp_path / "c.pt", {"method": {"solver": Thing()}})
    assert not (tmp_path / "c.pt").exists()


def test_failed_write_keeps_previous_and_pickles_are_not_run(tmp_path: Path) -> None:
    p = tmp_path / "c.pt"
    save_checkpoint(p, {"v": torch.tensor([1.0])})
    with pytest.raises(RunError):
        save_checkpoint(p, {"v": torch.tensor([2.0]), "bad": object()})
    assert load_checkpoint(p)["v"].item() == 1.0
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.pt"]  # no temp file left

    class Evil:
        def __reduce__(self):  # executed only by an unsafe load
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match=r"evil.pt: not a readable mtopt checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_rng_state_roundtrip(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "r.pt", {"rng": get_rng_state()})
    expected = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (random.random(), np.random.normal(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def brute_auc(y: np.ndarray, s: np.ndarray) -> float:
    """P(score of a random positive > a random negative), ties count one half."""
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 6)),  # few distinct scores -> ties
        min_size=2,
        max_size=60,
    )
)
def test_auc_matches_pairwise_definition(data: list[tuple[int, int]]) -> None:
    y = np.array([a for a, _ in data], dtype=float)
    s = np.array([b for _, b in data], dtype=float) / 7
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = task_auc(y, s, where="val")
    if len(np.unique(y)) < 2:
        assert got is None
        assert any(issubclass(w.category, SingleClassWarning) for w in caught)
    else:
        assert got == pytest.approx(brute_auc(y, s), abs=1e-12)
        assert not caught


def test_single_class_is_null_with_warning_not_half() -> None:
    with pytest.warns(SingleClassWarning, match=r"val split, task 'cvr': all 5 labels are 0"):
        assert task_auc(np.zeros(5), np.linspace(0, 1, 5), where="val split, task 'cvr'") is None
    assert mean_or_none([0.8, None, 0.6]) == pytest.approx(0.7)
    assert mean_or_none([None, None]) is None
