"""What a tuning is: :class:`TuneConfig` (the cells, the budget, the sampler, the seeds)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from mtopt.errors import InputError
from mtopt.sweep.spec import Spec, method_label
from mtopt.tune.space import Space, method_space

SAMPLERS = ("tpe", "grid")


@dataclass
class TuneConfig:
    """A tuning: each (recipe, backbone, method) cell gets its own study of ``n_trials``.

    Attributes:
        name: prefix of the study names and the default output folder.
        recipes, backbones, methods: the cells (method specs may hold ranges, see
            :mod:`mtopt.tune.space`); ``stl=True`` adds single-task learning (backbone ``stl``
            with ``ls``) per recipe, tuned alike, for Δm%.
        lr: the learning-rate range, searched log-uniformly (``1e-4..3e-2``).
        n_trials: trials per cell, the same for every method (the budget).
        tune_seeds: training seeds of one trial (its score: the mean validation AUC average).
        test_seeds: seeds of the retrained best setting of each cell (test AUC).
        overrides: ``--set`` overrides for every run.
        sampler: ``tpe`` (Optuna's TPE, seeded) or ``grid`` (every combination, ``grid_points``
            values per range; the budget is then min(n_trials, grid size)).
        baseline: method label of the plain backbone (marks compare against it).
    """

    name: str
    recipes: list[str]
    backbones: list[Spec]
    methods: list[Spec]
    lr: str = "1e-4..3e-2"
    n_trials: int = 8
    tune_seeds: list[int] = field(default_factory=lambda: [0])
    test_seeds: list[int] = field(default_factory=lambda: [0, 1])
    overrides: list[str] = field(default_factory=list)
    sampler: str = "tpe"
    grid_points: int = 3
    baseline: str = "LS"
    stl: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler: one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.n_trials < 1:
            raise InputError(f"n_trials: must be >= 1, got {self.n_trials}")
        if self.grid_points < 2:
            raise InputError(f"grid_points: must be >= 2, got {self.grid_points}")
        if not self.recipes or not self.backbones or not self.methods:
            raise InputError("tune: needs at least one recipe, backbone and method")
        if not self.tune_seeds or not self.test_seeds:
            raise InputError("seeds: give at least one tuning seed and one test seed")
        labels = [method_label(m) for m in self.methods]
        if len(set(labels)) != len(labels):
            raise InputError(f"methods: two share a label ({labels}); give labels")
        for m in self.methods:
            self.space(m)  # a malformed range fails now, naming its field

    def space(self, method: Spec) -> Space:
        return method_space(method, self.lr)

    def fingerprint(self) -> str:
        """8 hex digits of what changes a trial's meaning besides its cell (overrides, tuning
        seeds, lr range, sampler): part of every study name, so changing them starts new
        studies instead of mixing trials."""
        text = json.dumps(
            [sorted(self.overrides), self.tune_seeds, self.lr, self.sampler, self.grid_points]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def cells(self) -> list[tuple[str, Spec, Spec]]:
        """(recipe, backbone, method) of every study: STL first per recipe, when asked."""
        out: list[tuple[str, Spec, Spec]] = []
        for r in self.recipes:
            if self.stl:
                out.append((r, Spec("stl"), Spec("ls", label=self.baseline)))
            for m in self.methods:
                for b in self.backbones:
                    out.append((r, b, m))
        return out
