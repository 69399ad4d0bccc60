"""Search spaces from method specs: ranges, choices, the learning rate, grids, errors."""

from __future__ import annotations

import itertools
import math

import pytest

from mtopt.errors import InputError
from mtopt.sweep import Spec
from mtopt.tune import LR_KEY, method_space, parse_range


def test_ranges_parse_to_their_kind_and_bounds():
    d = parse_range("c", "0.1..0.9")
    assert (d.kind, d.low, d.high, d.log) == ("float", 0.1, 0.9, False)
    assert parse_range("k", "1..20").kind == "int"
    assert parse_range("w", "log:1e-6..1e-3").log
    assert parse_range("a", "frobenius|exact").choices == ("frobenius", "exact")
    assert parse_range("s", "1|10").choices == (1, 10)


@pytest.mark.parametrize("text", ["0.9..0.1", "a..b", "1..", "x|", "log:0..1"])
def test_a_malformed_range_names_its_field(text):
    with pytest.raises(InputError, match=r"^cagrad\[c\]: "):
        method_space(Spec.parse(f"cagrad[c={text}]"), "1e-4..1e-2")


def test_the_learning_rate_is_searched_unless_the_spec_sets_it():
    space = method_space(
        Spec.parse("pub[alpha_scale=frobenius|exact,solve_every=10]"), "1e-4..1e-2"
    )
    assert [d.name for d in space.dims] == [LR_KEY, "alpha_scale"]
    assert space.dims[0].log and (space.dims[0].low, space.dims[0].high) == (1e-4, 1e-2)
    assert dict(space.fixed) == {"solve_every": 10}
    fixed = method_space(Spec.parse("ls[optimizer.lr=0.004]"), "1e-4..1e-2")
    assert fixed.dims == () and dict(fixed.fixed) == {LR_KEY: 0.004}
    concrete = space.concrete({LR_KEY: 0.003, "alpha_scale": "exact"})
    assert concrete.kwargs() == {"alpha_scale": "exact", "solve_every": 10, LR_KEY: 0.003}


def test_the_grid_is_the_product_of_the_axes():
    space = method_space(Spec.parse("pub[alpha_scale=frobenius|exact]"), "1e-4..1e-2")
    grid = space.grid(3)
    lrs = [1e-4, 1e-3, 1e-2]  # log-spaced ends and middle
    want = [
        {LR_KEY: lr, "alpha_scale": a} for lr, a in itertools.product(lrs, ["frobenius", "exact"])
    ]
    assert len(grid) == len(want)
    for g, w in zip(grid, want):
        assert g["alpha_scale"] == w["alpha_scale"] and math.isclose(g[LR_KEY], w[LR_KEY])
