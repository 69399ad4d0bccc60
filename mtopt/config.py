"""Recipes: the YAML file that describes one training run, validated with pydantic.

A recipe has six sections (every field is documented in ``docs/recipes.md``)::

    data:      {name: synthetic-ranking, shard: global, <the dataset's keyword arguments>}
    model:     {name: mmoe, <the backbone's keyword arguments>}
    method:    {name: pub, solver: newton, solve_every: 1, alpha_scale: ..., umm: null,
                <other methods' hyperparameters>}
    optimizer: {name: adam, lr: 1e-3, weight_decay: 1e-6, batch_size: 4096, ...}
    train:     {epochs: 1 | steps: N, seed: 0, eval_every: null, checkpoint_every: null,
                device: cpu, max_batches_per_epoch: null, ...}
    output:    {dir: runs/NAME, plots: true, tensorboard: false, progress: true}

The defaults of ``optimizer`` are the PUB paper's (Yuan et al., ICDM 2024, Sec. VI-A3: Adam,
learning rate 1e-3, weight decay 1e-6, batch size 4096).

Every error is an :class:`mtopt.errors.InputError` whose one-line message names the file and the
field, e.g. ``recipe.yaml: method.solver: unknown solver 'newtn' (known: ccp, newton)``.
This module is the schema only: it knows no component. Component names (dataset, backbone,
method, solver, UMM) and the free keyword arguments of ``data``, ``model`` and ``method`` are
checked against the registered components by the composition root
(:func:`mtopt.train.components.load_recipe` / :func:`~mtopt.train.components.check_components`,
which ``mtopt train`` and ``mtopt sweep`` call before anything is written, and
:func:`mtopt.train.build.build_components` before anything is built).

``--set a.b=value`` overrides (:func:`apply_overrides`) are applied to the parsed YAML before
validation; the value is parsed as YAML (``--set train.steps=20``, ``--set method.umm=null``,
``--set model.expert_dims=[64,32]``). Setting one of ``train.epochs`` / ``train.steps`` clears
the other one of the recipe.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mtopt.errors import InputError
from mtopt.optimizer_config import OPTIMIZER_NAMES

ALPHA_SCALES = ("exact", "frobenius")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _OpenSection(BaseModel):
    """A section with a registered ``name`` and free keyword arguments for that component."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str

    def kwargs(self) -> dict[str, Any]:
        """The free keyword arguments (everything but the declared fields)."""
        return dict(self.model_extra or {})


class DataConfig(_OpenSection):
    """``data``: the registered dataset ``name`` and its keyword arguments (e.g. ``path``).

    ``shard`` (not passed to the dataset) says how several processes share the training data:
    ``global`` (default) — every process reads the same global batches and keeps its slice;
    ``rank`` — every process reads only its own share of the stream, in local batches of
    ``optimizer.batch_size / processes`` rows, when the dataset supports it (``aliexpress``);
    other datasets fall back to ``global`` (see docs/scaling.md).
    """

    name: str = "synthetic-ranking"
    shard: Literal["global", "rank"] = "global"


class ModelConfig(_OpenSection):
    """``model``: the registered backbone ``name`` and its keyword arguments (widths…)."""

    name: str = "mmoe"


class MethodConfig(_OpenSection):
    """``method``: the registered method ``name``; PUB's options; other hyperparameters.

    ``solver``, ``solve_every``, ``alpha_scale`` and ``umm`` are passed to the method only when
    given (``null`` = the method's own default), so a method that does not take them gets an
    error naming the field.
    """

    name: str = "pub"
    solver: str | None = None
    solve_every: int | None = Field(default=None, ge=1)
    alpha_scale: Literal["exact", "frobenius"] | None = None
    umm: str | list[str] | None = None
    #: PUB and the backbone's shared embedding tables: ``balanced`` (default, null: in D, as
    #: Algorithm 1 treats all shared parameters), ``row-wise`` (in D, per-task updates only on
    #: the touched rows — equal to balanced, far less memory), ``plain`` (out of D, the plain
    #: base step on ∇Σ Lᵢ); see docs/scaling.md
    embeddings: Literal["balanced", "row-wise", "plain"] | None = None

    @field_validator("umm", mode="before")
    @classmethod
    def _no_umm(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() in ("", "none"):
            return None
        return None if isinstance(v, list) and not v else v

    def kwargs(self) -> dict[str, Any]:
        out = {
            k: getattr(self, k)
            for k in ("solver", "solve_every", "alpha_scale", "umm")
            if getattr(self, k) is not None
        }
        out.update(self.model_extra or {})
        return out


class OptimizerSection(_Section):
    """``optimizer``: the base optimiser (the PUB paper's defaults) and the batch size."""

    name: Literal[OPTIMIZER_NAMES] = "adam"  # type: ignore[valid-type]
    lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(default=1e-6, ge=0, allow_inf_nan=False)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(default=1e-8, gt=0, allow_inf_nan=False)
    batch_size: int = Field(default=4096, ge=1)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def to_optimizer_config(self) -> Any:
        """The :class:`mtopt.methods.base.OptimizerConfig` handed to the method."""
        from mtopt.optimizer_config import OptimizerConfig

        return OptimizerConfig(
            name=self.name,
            lr=self.lr,
            weight_decay=self.weight_decay,
            betas=tuple(self.betas),
            eps=self.eps,
            extra=dict(self.extra),
        )


class TrainConfig(_Section):
    """``train``: length, seed, evaluation / checkpoint cadence, device."""

    epochs: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)
    seed: int = 0
    eval_every: int | None = Field(default=None, ge=1)
    checkpoint_every: int | None = Field(default=None, ge=1)
    device: Literal["cpu", "cuda"] = "cpu"
    max_batches_per_epoch: int | None = Field(default=None, ge=1)
    eval_batch_size: int | None = Field(default=None, ge=1)
    threads: int | None = Field(default=None, ge=1)
    #: seconds a process waits in a collective before failing (multi-process runs only;
    #: evaluation runs on rank 0 while the others wait, so keep it above one evaluation)
    dist_timeout: float = Field(default=1800.0, gt=0)

    @model_validator(mode="after")
    def _length(self) -> TrainConfig:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give train.epochs or train.steps, not both")
        if self.epochs is None and self.steps is None:
            object.__setattr__(self, "epochs", 1)
        return self


class OutputConfig(_Section):
    """``output``: where results go and which extras are written."""

    dir: str | None = None
    plots: bool = True
    tensorboard: bool = False
    progress: bool = True


class Recipe(_Section):
    """A whole recipe (see the module docstring)."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (extras included), suitable for YAML / JSON and for re-validation."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------------------------
# loading, overrides, error formatting


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (``["a", "b"]``, YAML-parsed value)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise InputError(
            f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. train.steps=20"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        msg = str(exc).splitlines()[0]
        raise InputError(f"--set {text!r}: the value is not valid YAML ({msg})") from None
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> set[str]:
    """Apply ``--set`` overrides to the raw recipe dict in place; return the dotted keys set."""
    touched: set[str] = set()
    for text in overrides:
        path, value = parse_override(text)
        node: Any = raw
        for i, part in enumerate(path[:-1]):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                where = ".".join(path[: i + 1])
                raise InputError(f"--set {text!r}: {where} is a value, not a section")
        node[path[-1]] = value
        dotted = ".".join(path)
        touched.add(dotted)
        # epochs and steps are exclusive: setting one replaces the recipe's other one
        other = {"train.epochs": "steps", "train.steps": "epochs"}.get(dotted)
        if other and value is not None and f"train.{other}" not in touched:
            node.pop(other, None)
    return touched


def _fmt_loc(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _allowed_fields(loc: Sequence[Any]) -> list[str] | None:
    model: Any = Recipe
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = field.annotation
    fields = getattr(model, "model_fields", None)
    return sorted(fields) if fields else None


def _format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = _fmt_loc(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            known = _allowed_fields(loc)
            msg = "unknown field" + (f" (known: {', '.join(known)})" if known else "")
        elif err["type"] == "literal_error":
            msg = f"{err['msg'].lower()}, got {err.get('input')!r}"
        elif err["type"] in ("model_type", "dict_type"):
            msg = f"expected a mapping (section), got {type(err.get('input')).__name__}"
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            if "input" in err and err["type"] not in ("missing",):
                msg = f"{msg}, got {err['input']!r}"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


class _DuplicateKeyError(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML would keep
    the last value silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise _DuplicateKeyError(
                    f"duplicate key {key!r} at line {line} (first given at line {first}); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_recipe_file(path: str | Path) -> dict[str, Any]:
    """Read a recipe YAML file (``yaml.safe_load``) into a dict; InputError on any problem."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such recipe file (check the path; see recipes/)")
    try:
        raw = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except _DuplicateKeyError as exc:
        raise InputError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if raw is None or raw == {}:
        raise InputError(
            f"{path}: empty recipe; a recipe names at least its data, model and method (see "
            "recipes/quickstart.yaml and docs/recipes.md)"
        )
    if not isinstance(raw, dict):
        raise InputError(
            f"{path}: a recipe is a YAML mapping with sections data, model, method, optimizer, "
            f"train, output; got a {type(raw).__name__}"
        )
    return raw


def recipe_from_dict(
    raw: dict[str, Any],
    source: str = "recipe",
    *,
    touched: set[str] | frozenset[str] = frozenset(),
    check: bool | None = None,
) -> Recipe:
    """Validate a raw dict into a :class:`Recipe`; errors are prefixed with ``source``.

    The schema only; ``check`` is deprecated and ignored (components are checked by
    :func:`mtopt.train.components.check_components`).
    """
    _deprecated_check(check)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        msg = _format_validation_error(exc)
        if touched:
            msg += f" (overrides applied: {', '.join(sorted(touched))})"
        raise InputError(f"{source}: {msg}") from None
    return recipe


def load_recipe(
    path: str | Path, overrides: Sequence[str] = (), *, check: bool | None = None
) -> Recipe:
    """Read, override (``--set``) and validate a recipe file against the schema.

    ``check`` is deprecated and ignored: :func:`mtopt.train.components.load_recipe` also checks
    the components.
    """
    _deprecated_check(check)
    raw = read_recipe_file(path)
    touched = apply_overrides(raw, overrides)
    return recipe_from_dict(raw, str(path), touched=touched)


def _deprecated_check(check: bool | None) -> None:
    if check is not None:
        warnings.warn(
            "check= of mtopt.config is deprecated (kept for one release) and ignored: the schema "
            "knows no component; use mtopt.train.components.load_recipe / check_components",
            DeprecationWarning,
            stacklevel=3,
        )


def __getattr__(name: str) -> Any:
    if name == "check_components":  # moved to the composition root; kept for one release
        warnings.warn(
            "mtopt.config.check_components is deprecated (kept for one release); use "
            "mtopt.train.components.check_components",
            DeprecationWarning,
            stacklevel=2,
        )
        from mtopt.train.components import check_components

        return check_components
    raise AttributeError(f"module 'mtopt.config' has no attribute {name!r}")
