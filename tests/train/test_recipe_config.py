"""Recipe validation: defaults, errors that name file and field, --set overrides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mtopt_train_fakes as fakes  # noqa: E402

from mtopt.config import (  # noqa: E402
    apply_overrides,
    parse_override,
    recipe_from_dict,
)
from mtopt.errors import InputError  # noqa: E402
from mtopt.registry import registry  # noqa: E402
from mtopt.train.components import load_recipe  # noqa: E402


def write(tmp_path: Path, raw: dict, name: str = "recipe.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw))
    return p


def test_defaults_are_the_papers() -> None:
    r = recipe_from_dict(
        {"data": {"name": "fake-ranking"}, "model": {"name": "fake-mlp"}, "method": {"name": "ls"}}
    )
    assert (r.optimizer.name, r.optimizer.lr, r.optimizer.weight_decay) == ("adam", 1e-3, 1e-6)
    assert r.optimizer.batch_size == 4096
    assert r.train.epochs == 1 and r.train.steps is None and r.train.device == "cpu"
    oc = r.optimizer.to_optimizer_config()
    assert (oc.lr, oc.weight_decay, oc.betas) == (1e-3, 1e-6, (0.9, 0.999))


def test_unknown_solver_names_file_field_and_known(tmp_path: Path) -> None:
    p = write(tmp_path, fakes.fake_recipe(method={"name": "pub", "solver": "newtn"}))
    with pytest.raises(InputError) as e:
        load_recipe(p)
    known = ", ".join(registry.names("solver"))
    assert str(e.value) == (
        f"{p}: method.solver: unknown solver 'newtn'; did you mean 'newton'? (known: {known})"
    )


def test_solver_of_a_method_without_alpha_solver_is_its_own_option(tmp_path: Path) -> None:
    """``method.solver`` names an α backend only for methods with the ``alpha_solver``
    capability; MGDA's own ``solver`` option (``frank_wolfe``) reaches MGDA unresolved."""
    p = write(tmp_path, fakes.fake_recipe(method={"name": "mgda", "solver": "frank_wolfe"}))
    assert load_recipe(p).method.solver == "frank_wolfe"
    p = write(tmp_path, fakes.fake_recipe(method={"name": "ls", "solver": "newton"}))
    with pytest.raises(InputError, match=r"method\.solver: method 'ls' does not take 'solver'"):
        load_recipe(p)


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("data", {"name": "no-such-data"}, "data.name"),
        ("model", {"name": "no-such-net"}, "model.name"),
        ("method", {"name": "no-such-method"}, "method.name"),
        ("method", {"umm": "no-such-umm"}, "method.umm"),
    ],
)
def test_unknown_component_names(tmp_path: Path, section: str, value: dict, field: str) -> None:
    p = write(tmp_path, fakes.fake_recipe(**{section: value}))
    with pytest.raises(InputError, match=rf"^{p}: {field}: unknown .* \(known: "):
        load_recipe(p)


def test_unknown_keys_are_errors(tmp_path: Path) -> None:
    raw = fakes.fake_recipe(train={"epocs": 3})
    with pytest.raises(
        InputError, match=r"recipe.yaml: train.epocs: unknown field \(known: .*epochs"
    ):
        load_recipe(write(tmp_path, raw))
    raw = fakes.fake_recipe()
    raw["trian"] = {"epochs": 1}
    with pytest.raises(InputError, match=r"recipe.yaml: trian: unknown field"):
        load_recipe(write(tmp_path, raw))
    # free kwargs are checked against the component's signature
    with pytest.raises(
        InputError,
        match=r"recipe.yaml: data.rowz: dataset 'fake-ranking' does "
        r"not take 'rowz' \(known: .*rows",
    ):
        load_recipe(write(tmp_path, fakes.fake_recipe(data={"rowz": 5})))
    with pytest.raises(InputError, match=r"method.alpha_scale: method 'ls' does not take"):
        load_recipe(write(tmp_path, fakes.fake_recipe(method={"alpha_scale": "exact"})))


def test_type_and_value_errors_name_the_field(tmp_path: Path) -> None:
    cases = [
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"optimizer": {"lr": -1}}, "optimizer.lr"),
        ({"optimizer": {"name": "adamw"}}, "optimizer.name"),
        ({"method": {"alpha_scale": "frob"}}, "method.alpha_scale"),
        ({"train": {"device": "tpu"}}, "train.device"),
        ({"train": {"steps": 5}}, "train"),  # epochs and steps both
    ]
    for sections, field in cases:
        with pytest.raises(InputError) as e:
            load_recipe(write(tmp_path, fakes.fake_recipe(**sections)))
        msg = str(e.value)
        assert msg.startswith(f"{tmp_path / 'recipe.yaml'}: {field}"), msg
        assert "\n" not in msg


def test_yaml_and_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("data:\n  name: [unclosed\n")
    with pytest.raises(InputError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_recipe(p)
    with pytest.raises(InputError, match=r"nope.yaml: no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
    p.write_text("- a list\n")
    with pytest.raises(InputError, match=r"bad.yaml: a recipe is a YAML mapping"):
        load_recipe(p)


def test_set_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, fakes.fake_recipe())
    r = load_recipe(
        p,
        [
            "train.steps=7",  # replaces the recipe's epochs
            "optimizer.lr=3e-4",
            "optimizer.betas=[0.8, 0.9]",
            "data.rows=123",  # a free kwarg of the dataset
            "output.dir=somewhere",
        ],
    )
    assert r.train.steps == 7 and r.train.epochs is None
    assert r.optimizer.lr == 3e-4 and r.optimizer.betas == (0.8, 0.9)
    assert r.data.kwargs()["rows"] == 123
    assert r.output.dir == "somewhere"
    with pytest.raises(
        InputError,
        match=r"train.stepz: unknown field.*overrides applied: "
        r"train.stepz",
    ):
        load_recipe(p, ["train.stepz=3"])
    with pytest.raises(InputError, match=r"--set 'train.steps': expected KEY=VALUE"):
        load_recipe(p, ["train.steps"])
    with pytest.raises(InputError, match=r"optimizer.lr is a value, not a section"):
        load_recipe(p, ["optimizer.lr.x=1"])


@settings(max_examples=40, deadline=None)
@given(
    key=st.lists(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), min_size=1, max_size=3),
    value=st.one_of(
        st.integers(),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(alphabet="abcxyz", min_size=1),
    ),
)
def test_parse_override_roundtrip(key: list[str], value: object) -> None:
    text = ".".join(key) + "=" + yaml.safe_dump(value, default_flow_style=True).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    path, parsed = parse_override(text)
    assert path == key
    assert parsed == value
    raw: dict = {}
    apply_overrides(raw, [text])
    node = raw
    for k in key[:-1]:
        node = node[k]
    assert node[key[-1]] == value
