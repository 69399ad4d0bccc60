"""The search space of one method: which fields of its spec are ranges, and how to sample them.

A method spec names a range where it would name a value (``mtopt tune --methods``):

- ``c=0.1..0.9``: a float in [0.1, 0.9], uniform (``log:1e-4..1e-2``: log-uniform);
- ``solve_every=1..20``: an integer (both ends integers);
- ``alpha_scale=frobenius|exact``: one of the choices (parsed as YAML: ``1|10`` are ints).

Fields named ``optimizer.KEY`` set the base optimiser of that method's runs
(``ls[optimizer.weight_decay=0..1e-4]``). The learning rate is always searched: the tune's
``lr`` range (log-uniform), unless the spec fixes or ranges ``optimizer.lr`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mtopt.errors import InputError
from mtopt.sweep.spec import Spec

LR_KEY = "optimizer.lr"


@dataclass(frozen=True)
class Dim:
    """One searched field: ``kind`` is ``float``, ``int`` or ``choice``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return "|".join(str(c) for c in self.choices)
        return f"{'log:' if self.log else ''}{self.low:g}..{self.high:g}"


def parse_range(name: str, text: str, *, log: bool = False, where: str | None = None) -> Dim:
    """``lo..hi`` / ``log:lo..hi`` / ``a|b|c`` → a :class:`Dim` named ``name``; an InputError
    names ``where`` (default ``name``) and the fix."""
    import yaml

    field = where or name
    raw = text.strip()
    if "|" in raw:
        parts = [p.strip() for p in raw.split("|")]
        if any(not p for p in parts) or len(parts) < 2:
            raise InputError(f"{field}: {text!r} is not a choice; write a|b (e.g. exact|frobenius)")
        return Dim(name, "choice", choices=tuple(yaml.safe_load(p) for p in parts))
    if raw.startswith("log:"):
        log, raw = True, raw[4:]
    lo_text, sep, hi_text = raw.partition("..")
    try:
        lo, hi = yaml.safe_load(lo_text), yaml.safe_load(hi_text)
        lo_f, hi_f = float(lo), float(hi)
    except (TypeError, ValueError, yaml.YAMLError):
        lo_f = hi_f = math.nan
    if not sep or not (math.isfinite(lo_f) and math.isfinite(hi_f)) or not lo_f < hi_f:
        raise InputError(f"{field}: {text!r} is not a range; write LOW..HIGH with LOW < HIGH")
    if log and lo_f <= 0:
        raise InputError(f"{field}: a log range needs LOW > 0, got {text!r}")
    is_int = isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool)
    return Dim(name, "int" if is_int and not log else "float", lo_f, hi_f, log)


def _is_range(value: Any) -> bool:
    return isinstance(value, str) and (".." in value or "|" in value)


@dataclass(frozen=True)
class Space:
    """A method spec split into its fixed parameters and its searched :class:`Dim` s."""

    spec: Spec
    fixed: tuple[tuple[str, Any], ...]
    dims: tuple[Dim, ...]

    def concrete(self, params: dict[str, Any], label: str | None = None) -> Spec:
        """The method spec of one trial: the fixed parameters plus ``params``."""
        merged = dict(self.fixed) | params
        return Spec(self.spec.name, tuple(sorted(merged.items())), label)

    def grid(self, points: int) -> list[dict[str, Any]]:
        """Every combination of the choices and ``points`` values per range (log-spaced on a
        log range; integers de-duplicated), in a fixed order."""
        import itertools

        import numpy as np

        axes = []
        for d in self.dims:
            if d.kind == "choice":
                axes.append(list(d.choices))
            elif d.log:
                axes.append([float(v) for v in np.geomspace(d.low, d.high, points)])
            elif d.kind == "int":
                vals = np.linspace(d.low, d.high, points).round().astype(int)
                axes.append(sorted({int(v) for v in vals}))
            else:
                axes.append([float(v) for v in np.linspace(d.low, d.high, points)])
        return [dict(zip([d.name for d in self.dims], combo)) for combo in itertools.product(*axes)]


def method_space(spec: Spec, lr: str) -> Space:
    """The :class:`Space` of a method spec; ``lr`` (``1e-4..1e-2``) is searched log-uniformly
    unless the spec fixes or ranges ``optimizer.lr`` itself."""
    fixed: list[tuple[str, Any]] = []
    dims: list[Dim] = []
    for k, v in spec.kwargs().items():
        if _is_range(v):
            dims.append(parse_range(k, v, log=k == LR_KEY, where=f"{spec.name}[{k}]"))
        else:
            fixed.append((k, v))
    if LR_KEY not in dict(fixed) and all(d.name != LR_KEY for d in dims):
        text = lr if lr.startswith("log:") else f"log:{lr}"
        dims.insert(0, parse_range(LR_KEY, text, where="lr"))
    return Space(spec, tuple(fixed), tuple(dims))


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """The trial's values of the space's dimensions (an Optuna trial's ``suggest_*``)."""
    out: dict[str, Any] = {}
    for d in space.dims:
        if d.kind == "choice":
            out[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        elif d.kind == "int":
            out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high))
        else:
            out[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.log)
    return out


def distributions(space: Space) -> dict[str, Any]:
    """Optuna distributions of the space (for ``study.ask(fixed_distributions=...)``)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for d in space.dims:
        if d.kind == "choice":
            out[d.name] = CategoricalDistribution(list(d.choices))
        elif d.kind == "int":
            out[d.name] = IntDistribution(int(d.low), int(d.high))
        else:
            out[d.name] = FloatDistribution(d.low, d.high, log=d.log)
    return out
