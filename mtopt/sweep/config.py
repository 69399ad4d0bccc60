"""What a sweep is: :class:`SweepConfig` and the reducer kinds and sizes it can name."""

from __future__ import annotations

from dataclasses import dataclass, field

from mtopt.errors import InputError
from mtopt.sweep.spec import Spec, method_label

KINDS = ("auc", "ranking", "timing", "diagnostics", "solvers")


OBSERVE = {
    "auc": None,
    "ranking": None,
    "timing": "timing",
    "diagnostics": "diagnostics",
    "solvers": None,
}


SIZES = ("quick", "standard", "full")


@dataclass
class SweepConfig:
    """One sweep: what to train and how to reduce it to a table.

    Attributes:
        name: used in titles and default folders.
        recipes: recipe files (column groups of the table).
        backbones: backbone specs; ``stl`` may be added with ``stl=True``.
        methods: method specs; the one whose label equals ``baseline`` is the plain backbone.
        seeds: training seeds (``train.seed``; the data's seed stays the recipe's).
        overrides: ``--set`` overrides applied to every recipe first (e.g. the size).
        kind: reducer: ``auc``, ``ranking``, ``timing``, ``diagnostics`` or ``solvers``.
        baseline: method label of the plain-backbone row (marks compare against it).
        stl: add a single-task-learning row (backbone ``stl`` with ``ls``).
        description: one paragraph saying what the sweep covers (written into the table).
        paper: the paper's numbers to print beside ours (markdown), if any.
    """

    name: str
    recipes: list[str]
    backbones: list[Spec]
    methods: list[Spec]
    seeds: list[int]
    overrides: list[str] = field(default_factory=list)
    kind: str = "auc"
    baseline: str = "LS"
    stl: bool = False
    description: str = ""
    paper: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"sweep kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.recipes or not self.backbones or not self.methods or not self.seeds:
            raise InputError("sweep: needs at least one recipe, backbone, method and seed")
        labels = [method_label(m) for m in self.methods]
        if len(set(labels)) != len(labels):
            raise InputError(f"sweep: two methods share a label ({labels}); give labels")
