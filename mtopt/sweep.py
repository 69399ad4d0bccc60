"""Sweeps and the paper's experiments: recipe(s) × methods × backbones × seeds → tables.

A *sweep* (:class:`SweepConfig`) trains every combination of recipes, backbones, methods and
seeds, each as one run of :func:`mtopt.train.trainer` in its own folder, and reduces the runs to
one table. Five reducers (``SweepConfig.kind``) give the analogues of the PUB paper's tables
(Yuan, Cai & Dong, ICDM 2024):

- ``auc`` (Tables III and IV): per recipe, the test AUC of every task and their average, mean ±
  std over seeds; ``‡`` where a method is significantly better than its plain backbone (Welch's
  t-test, one-sided, ``p < 0.05``, :func:`welch_greater`); the best value of each column in bold
  (compared at the 4 decimals shown, ties all bold, :func:`best_rows`).
- ``timing`` (Table V): CPU and wall seconds per epoch (training only, no evaluation),
  per-step and per-solve milliseconds, and the ratios to the plain backbone; one run at a time.
- ``diagnostics`` (Table I / §III): the per-step cosine similarity of gradient and update on the
  task-specific and on the shared parameters, Welch's t-test (two-sided) of each method against
  LS, the Diff metric (eq. (1)) and the Diff-vs-AUC pair analysis of Fig. 4.
- ``solvers``: one recipe trained with each α backend: AUCs, time per solve, share of failed
  solves, residuals.

Everything the paper's tables need is one command (:data:`EXPERIMENTS`, ``mtopt reproduce``;
``mtopt sweep --preset quick|standard|full`` is Table III).

**Run keys and resumability.** Each run is fully described by its validated recipe (overrides
applied, the ``method`` section replaced, backbone and seed set). Its key is a SHA-256 of the
values of that recipe that differ from the schema defaults, without the ``output`` section and
``train.threads`` (which do not change results), plus the observation mode (:func:`recipe_key`).
Code is not part of the key: each ``result.json`` records ``git describe`` of the tree that
produced it, and ``force=True`` re-runs everything. A run's folder ``<runs>/<label>__<key>``
receives ``result.json`` (written atomically when the run ends, ``status: ok`` or ``failed``
with the error); a later sweep skips every run whose ``result.json`` says ``ok`` with the same
key, and re-runs failed ones (unless ``retry_failed=False``). An interrupted run restarts from
scratch. Run folders can be shared by several sweeps (``mtopt reproduce`` shares
``results/runs``): identical runs are trained once. Two sweeps must not run at the same time on
the same runs folder.

**Backbones.** The recipe's ``model`` section is kept for its own backbone; for another backbone
only the keys all built-in backbones share (:data:`PORTABLE_MODEL_KEYS`) are kept, and the
backbone spec's own parameters are added (``ple[expert_dim=64,n_shared=4]``).

**Methods.** The recipe's ``method`` section is replaced by ``{name, **params}`` of the method
spec (``pub[solve_every=10,alpha_scale=exact]``), so no option of one method leaks into another.
Parameters named ``optimizer.KEY`` set the recipe's ``optimizer`` section for that method's runs
only (``ls[optimizer.lr=0.004]``: LS with twice the learning rate, as its own row).

**α fixed at 1.** The ablation "α = 1" is ``pub[fixed_alpha=1]`` (:class:`mtopt.optim.PUB`'s
``fixed_alpha``): the joint update is the sum of the per-task updates, which is what a PUB
whose solver silently fails does (DESIGN §2.8).

**Parallelism.** ``jobs > 1`` runs several runs at once in ``spawn``-ed worker processes, each
with ``torch.set_num_threads(1)`` (``train.threads`` is set to ``threads``, default 1, for every
run). ``timing`` sweeps always run one at a time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mtopt.errors import InputError
from mtopt.io import atomic_write_json, atomic_write_text
from mtopt.registry import registry

#: bump when the meaning of a run key changes (invalidates every cached run)
KEY_VERSION = 1
#: significance level of the ‡ marks
ALPHA_LEVEL = 0.05
#: decimals shown (and compared for bold) in the tables, as in the paper
DECIMALS = 4
#: model keys every built-in backbone accepts (kept when the sweep switches backbone)
PORTABLE_MODEL_KEYS = (
    "embed_dim",
    "dense_dim",
    "embed_user",
    "embed_init_std",
    "tower_dims",
    "dropout",
    "esmm",
)
KINDS = ("auc", "timing", "diagnostics", "solvers")
OBSERVE = {"auc": None, "timing": "timing", "diagnostics": "diagnostics", "solvers": None}
SIZES = ("quick", "standard", "full")

BACKBONE_LABELS = {
    "mmoe": "MMoE",
    "ple": "PLE",
    "sharedbottom": "Shared-Bottom",
    "stl": "STL",
    "drgrad": "DRGrad-MMoE",
}
METHOD_LABELS = {
    "ls": "LS",
    "mgda": "MGDA",
    "mgdaub": "MGDA-UB",
    "nashmtl": "NashMTL",
    "imtlg": "IMTL-G",
    "imtl": "IMTL",
    "imtll": "IMTL-L",
    "pcgrad": "PCGrad",
    "cagrad": "CAGrad",
    "graddrop": "GradDrop",
    "uncertainty": "Uncertainty",
    "banditmtl": "BanditMTL",
    "famo": "FAMO",
    "dwa": "DWA",
    "rlw": "RLW",
    "si": "SI",
    "gradnorm": "GradNorm",
    "clippyadam": "ClippyAdam",
    "adatask": "AdaTask",
    "pub": "PUB",
    "pubclippy": "PUB+Clippy",
    "pubadatask": "PUB+AdaTask",
    "drgrad": "DRGrad",
}


# ----------------------------------------------------------------------------------------------
# specs: `name[key=value,...]`


@dataclass(frozen=True)
class Spec:
    """A registered component name with parameters and a display label.

    ``Spec.parse("pub[solve_every=10,alpha_scale=exact]")``; values are parsed as YAML.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    label: str | None = None

    @property
    def key(self) -> str:
        """Canonical text (normalised name and sorted parameters)."""
        norm = re.sub(r"[-_\s]", "", self.name).lower()
        if not self.params:
            return norm
        inner = ",".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(self.params))
        return f"{norm}[{inner}]"

    def kwargs(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return {k: _thaw(v) for k, v in self.params}

    @staticmethod
    def parse(text: str, label: str | None = None) -> Spec:
        """Parse ``name`` or ``name[key=value,key=value]`` (values as YAML)."""
        import yaml

        text = text.strip()
        m = re.fullmatch(r"([A-Za-z0-9_\-]+)\s*(?:\[(.*)\])?", text, flags=re.S)
        if not m:
            raise InputError(
                f"spec {text!r}: expected NAME or NAME[key=value,...], e.g. pub[solve_every=10]"
            )
        name, inner = m.group(1), m.group(2)
        params: list[tuple[str, Any]] = []
        for part in _split_top(inner or ""):
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise InputError(f"spec {text!r}: {part!r} is not key=value")
            try:
                val = yaml.safe_load(v) if v.strip() else None
            except yaml.YAMLError:
                raise InputError(f"spec {text!r}: value of {k.strip()!r} is not YAML") from None
            params.append((k.strip(), _freeze(val)))
        return Spec(name, tuple(params), label)


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple):
        if v and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in v):
            return {k: _thaw(x) for k, x in v}
        return [_thaw(x) for x in v]
    return v


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            if cur.strip():
                out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_specs(text: str | Sequence[str]) -> list[Spec]:
    """``"ls,pub[solve_every=10],nashmtl"`` (or a list of such strings) → specs."""
    parts = _split_top(text) if isinstance(text, str) else [p for t in text for p in _split_top(t)]
    if not parts:
        raise InputError("expected at least one NAME or NAME[key=value,...]")
    return [Spec.parse(p) for p in parts]


def backbone_label(spec: Spec) -> str:
    """Display name of a backbone spec (``MMoE``, ``PLE`` …)."""
    if spec.label:
        return spec.label
    base = BACKBONE_LABELS.get(re.sub(r"[-_\s]", "", spec.name).lower(), spec.name)
    return base + _param_suffix(spec)


def method_label(spec: Spec) -> str:
    """Display name of a method spec (``PUB``, ``NashMTL`` …)."""
    if spec.label:
        return spec.label
    base = METHOD_LABELS.get(re.sub(r"[-_\s]", "", spec.name).lower(), spec.name)
    return base + _param_suffix(spec)


def _param_suffix(spec: Spec) -> str:
    if not spec.params:
        return ""
    return "[" + ",".join(f"{k}={_thaw(v)}" for k, v in spec.params) + "]"


# ----------------------------------------------------------------------------------------------
# configuration and planning


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
        kind: reducer: ``auc``, ``timing``, ``diagnostics`` or ``solvers``.
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


@dataclass
class PlannedRun:
    """One run of a sweep, its validated recipe, key and folder."""

    recipe_path: str
    recipe_label: str
    backbone: str
    backbone_name: str
    method: str
    method_name: str
    seed: int
    observe: str | None
    recipe: dict[str, Any]
    key: str
    run_dir: Path
    dropped_model_keys: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """Picklable description for a worker process."""
        return {
            "recipe": self.recipe,
            "run_dir": str(self.run_dir),
            "source": self.recipe_path,
            "observe": self.observe,
            "key": self.key,
        }


def recipe_key(recipe: dict[str, Any], observe: str | None) -> str:
    """SHA-256 run key of a validated recipe dict.

    Only values that differ from the recipe schema's defaults count (so a field added to the
    schema later, with a default, does not invalidate cached runs), without ``output`` and
    ``train.threads`` (they do not change results), plus the observation mode. Code changes
    are not part of the key: re-run with ``force=True`` (``--force``) after changing code.
    """
    from mtopt.config import Recipe

    d = Recipe.model_validate(recipe).model_dump(mode="json", exclude_defaults=True)
    d.pop("output", None)
    d.get("train", {}).pop("threads", None)
    text = json.dumps({"v": KEY_VERSION, "observe": observe, "recipe": d}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


_CODE_VERSION: str | None = None


def code_version() -> str:
    """``git describe --always --dirty`` of the source tree, or the package version."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import subprocess

        import mtopt

        root = Path(__file__).resolve().parent.parent
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            _CODE_VERSION = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            _CODE_VERSION = ""
        _CODE_VERSION = _CODE_VERSION or f"mtopt {getattr(mtopt, '__version__', '?')}"
    return _CODE_VERSION


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "x"


def default_recipes_dir() -> Path:
    """``recipes/`` of the source tree (editable install), else ``./recipes``."""
    here = Path(__file__).resolve().parent.parent / "recipes"
    return here if here.is_dir() else Path.cwd() / "recipes"


def resolve_recipe(path: str | Path, recipes_dir: Path | None = None) -> Path:
    """A recipe path as given, or relative to the recipes folder; InputError if missing."""
    p = Path(path)
    if p.is_file():
        return p
    base = recipes_dir or default_recipes_dir()
    for cand in (base / p, base / p.name, base / f"{p.name}.yaml"):
        if cand.is_file():
            return cand
    raise InputError(f"{path}: no such recipe file (looked in . and {base}; see recipes/)")


def _is_pub(method_name: str) -> bool:
    from mtopt.methods.pub import PUBMethod

    cls = registry.get("method", method_name)
    return isinstance(cls, type) and issubclass(cls, PUBMethod)


def build_recipe(
    path: str | Path,
    backbone: Spec,
    method: Spec,
    seed: int,
    overrides: Sequence[str] = (),
    *,
    observe: str | None = None,
    threads: int = 1,
    run_dir: str | Path | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The validated recipe dict of one run and the model keys dropped for the backbone.

    Order: read the file, apply ``overrides``, replace the ``method`` section by the method
    spec, set the backbone (keeping only :data:`PORTABLE_MODEL_KEYS` when it differs from the
    recipe's) and add the backbone spec's parameters, set ``train.seed``, ``train.threads`` and
    the output (no plots, no progress bars).
    """
    from mtopt.config import apply_overrides, read_recipe_file, recipe_from_dict

    raw = read_recipe_file(path)
    touched = apply_overrides(raw, list(overrides))
    model = dict(raw.get("model") or {})
    dropped: list[str] = []
    same = registry.has("backbone", model.get("name", "mmoe")) and (
        re.sub(r"[-_\s]", "", str(model.get("name", "mmoe"))).lower()
        == re.sub(r"[-_\s]", "", backbone.name).lower()
    )
    if not same:
        dropped = sorted(k for k in model if k != "name" and k not in PORTABLE_MODEL_KEYS)
        model = {k: v for k, v in model.items() if k in PORTABLE_MODEL_KEYS}
    model["name"] = backbone.name
    model.update(backbone.kwargs())
    raw["model"] = model
    mkw = method.kwargs()
    opt_keys = [k for k in mkw if k.startswith("optimizer.")]
    if opt_keys:  # e.g. ls[optimizer.lr=0.004]: this method's runs use another base optimiser
        opt = dict(raw.get("optimizer") or {})
        for k in opt_keys:
            opt[k.split(".", 1)[1]] = mkw.pop(k)
        raw["optimizer"] = opt
        touched = set(touched) | set(opt_keys)
    meth = {"name": method.name, **mkw}
    if observe == "diagnostics" and _is_pub(method.name):
        meth.setdefault("diagnostics", True)
    raw["method"] = meth
    train = dict(raw.get("train") or {})
    train["seed"] = int(seed)
    train["threads"] = int(threads)
    raw["train"] = train
    raw["output"] = {
        "dir": None if run_dir is None else str(run_dir),
        "plots": False,
        "tensorboard": False,
        "progress": False,
    }
    rec = recipe_from_dict(raw, str(path), touched=touched)
    return rec.to_dict(), dropped


def plan(
    config: SweepConfig,
    runs_dir: str | Path,
    *,
    threads: int = 1,
    recipes_dir: Path | None = None,
) -> list[PlannedRun]:
    """Every run of ``config`` with its validated recipe and key (bad input raises first)."""
    runs_dir = Path(runs_dir)
    observe = OBSERVE[config.kind]
    combos: list[tuple[str, Spec, Spec]] = []
    for r in config.recipes:
        if config.stl:
            combos.append((r, Spec("stl"), Spec("ls", label=config.baseline)))
        for m in config.methods:
            for b in config.backbones:
                combos.append((r, b, m))
    out: list[PlannedRun] = []
    for r, b, m in combos:
        path = resolve_recipe(r, recipes_dir)
        for seed in config.seeds:
            rec, dropped = build_recipe(
                path, b, m, seed, config.overrides, observe=observe, threads=threads
            )
            key = recipe_key(rec, observe)
            blabel, mlabel = backbone_label(b), method_label(m)
            name = f"{path.stem}__{_slug(blabel)}__{_slug(mlabel)}__s{seed}__{key[:12]}"
            run_dir = runs_dir / name
            if not run_dir.exists() and runs_dir.is_dir():  # the same run under another label
                same = sorted(runs_dir.glob(f"{path.stem}__*__s{seed}__{key[:12]}"))
                run_dir = same[0] if same else run_dir
            rec["output"]["dir"] = str(run_dir)
            out.append(
                PlannedRun(
                    recipe_path=str(path),
                    recipe_label=path.stem,
                    backbone=blabel,
                    backbone_name=b.name,
                    method=mlabel,
                    method_name=m.name,
                    seed=int(seed),
                    observe=observe,
                    recipe=rec,
                    key=key,
                    run_dir=run_dir,
                    dropped_model_keys=dropped,
                )
            )
    return out


# ----------------------------------------------------------------------------------------------
# observing a method (step time, solves, gradient/update cosines)


class ObservedMethod:
    """Wraps a method for the trainer and records per-step observations.

    Always: seconds of ``method.step`` (backward passes + update), solve seconds, solver status
    and residual. With ``diagnostics=True`` also (PUB paper §III): the cosine of gradient and
    update on the task-specific parameters and on the shared parameters, and the cosine between
    the two (first two) tasks' shared-parameter gradients. *Gradient* is what the method feeds
    its optimiser (``.grad`` after the step: the aggregated direction of a gradient-level
    method, the gradient of ``Σᵢ Lᵢ`` for LS and the towers); *update* is ``θ_before − θ_after``.
    PUB does not use ``.grad`` of the shared parameters, so for PUB the values come from its own
    ``diagnostics=True`` (gradient ``Σαᵢgᵢ``, the one its moments are fed).
    """

    def __init__(self, inner: Any, model: Any, *, diagnostics: bool = False) -> None:
        self.inner = inner
        self.model = model
        self.n_tasks = inner.n_tasks
        self.has_weights = getattr(inner, "has_weights", False)
        self.needs_closure = bool(getattr(inner, "needs_closure", False))
        self.diagnostics = diagnostics
        self.native = "cos_shared" in _pub_diag_keys(inner)
        seen: set[int] = set()
        self.shared = _unique([p for p in model.shared_parameters() if p.requires_grad], seen)
        self.tasks = _unique(
            [p for ps in model.all_task_parameters() for p in ps if p.requires_grad], seen
        )
        self.step_seconds: list[float] = []
        self.step_cpu: list[float] = []
        #: process CPU / wall clock at the first step's start and the last step's end
        self.span: list[float | None] = [None, None, None, None]
        self.solve_seconds: list[float] = []
        self.statuses: dict[str, int] = {}
        self.residuals: list[float] = []
        self.cos_shared: list[float | None] = []
        self.cos_task: list[float | None] = []
        self.task_grad_cos: list[float | None] = []

    def step(self, losses: Sequence[Any], **kw: Any) -> Any:
        """Forward to the wrapped method's ``step`` and record what it did."""
        import torch

        before_s = before_t = None
        if self.diagnostics:
            self.task_grad_cos.append(self._task_grad_cos(losses))
            if not self.native:
                before_s = [p.detach().clone() for p in self.shared]
                before_t = [p.detach().clone() for p in self.tasks]
        c0, t0 = time.process_time(), time.perf_counter()
        if self.span[0] is None:
            self.span[0], self.span[1] = c0, t0
        info = self.inner.step(losses, **kw)
        c1, t1 = time.process_time(), time.perf_counter()
        self.step_seconds.append(t1 - t0)
        self.step_cpu.append(c1 - c0)
        self.span[2], self.span[3] = c1, t1
        if info.solver_status is not None:
            st = str(info.solver_status)
            self.statuses[st] = self.statuses.get(st, 0) + 1
            if info.solve_seconds is not None and st != "reused":
                self.solve_seconds.append(float(info.solve_seconds))
        res = (info.extra or {}).get("residual")
        if res is not None and info.solver_status not in (None, "reused"):
            self.residuals.append(float(res))
        if self.diagnostics:
            if self.native:
                ex = info.extra or {}
                self.cos_shared.append(_finite_or_none(ex.get("cos_shared")))
                self.cos_task.append(_finite_or_none(ex.get("cos_task")))
            else:
                with torch.no_grad():
                    self.cos_shared.append(_grad_update_cos(self.shared, before_s))
                    self.cos_task.append(_grad_update_cos(self.tasks, before_t))
        return info

    def _task_grad_cos(self, losses: Sequence[Any]) -> float | None:
        import torch

        if len(losses) < 2 or not self.shared:
            return None
        gs = []
        for L in losses[:2]:
            if not getattr(L, "requires_grad", False):
                return None
            g = torch.autograd.grad(L, self.shared, retain_graph=True, allow_unused=True)
            gs.append(g)
        dot = na = nb = 0.0
        for a, b in zip(*gs):
            if a is None or b is None:
                continue
            a64, b64 = a.detach().double(), b.detach().double()
            dot += float((a64 * b64).sum())
            na += float((a64 * a64).sum())
            nb += float((b64 * b64).sum())
        return _cos(dot, na, nb)

    def state_dict(self) -> dict[str, Any]:
        """The wrapped method's state."""
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the wrapped method's state."""
        self.inner.load_state_dict(state)

    def report(self) -> dict[str, Any]:
        """JSON-ready observations (per-step series rounded to 6 significant digits)."""
        out: dict[str, Any] = {
            "steps": len(self.step_seconds),
            "step_seconds_mean": _mean(self.step_seconds),
            "step_seconds_total": float(sum(self.step_seconds)),
            "step_cpu_seconds_mean": _mean(self.step_cpu),
            # from the first step's start to the last step's end: the training loop (forward
            # passes, data, steps, anything the trainer does in between)
            "loop_cpu_seconds": (
                None if self.span[0] is None else float(self.span[2] - self.span[0])
            ),
            "loop_wall_seconds": (
                None if self.span[1] is None else float(self.span[3] - self.span[1])
            ),
            "solves": len(self.solve_seconds),
            "solve_seconds_mean": _mean(self.solve_seconds),
            "solve_seconds_median": (
                float(np.median(self.solve_seconds)) if self.solve_seconds else None
            ),
            "statuses": dict(sorted(self.statuses.items())),
            "residual_median": float(np.median(self.residuals)) if self.residuals else None,
            "residual_max": float(np.max(self.residuals)) if self.residuals else None,
        }
        if self.diagnostics:
            out["cos_shared"] = [_r6(x) for x in self.cos_shared]
            out["cos_task"] = [_r6(x) for x in self.cos_task]
            out["task_grad_cos"] = [_r6(x) for x in self.task_grad_cos]
        return out


def _pub_diag_keys(method: Any) -> set[str]:
    opt = getattr(method, "opt", None)
    if opt is not None and getattr(opt, "diagnostics", False):
        return {"cos_shared", "cos_task"}
    return set()


def _unique(params: Iterable[Any], seen: set[int]) -> list[Any]:
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _cos(dot: float, na: float, nb: float) -> float | None:
    den = math.sqrt(na) * math.sqrt(nb)
    return dot / den if den > 0 and math.isfinite(den) and math.isfinite(dot) else None


def _grad_update_cos(params: Sequence[Any], before: Sequence[Any] | None) -> float | None:
    """cos(∇, θ_before − θ_after) over a list of parameters (float64 sums)."""
    if not params or before is None:
        return None
    dot = na = nb = 0.0
    have = False
    for p, b in zip(params, before):
        if p.grad is None:
            continue
        have = True
        g = p.grad.detach().double()
        u = (b - p.detach()).double()
        dot += float((g * u).sum())
        na += float((g * g).sum())
        nb += float((u * u).sum())
    return _cos(dot, na, nb) if have else None


def _finite_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _r6(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.6g}")


def _mean(xs: Sequence[float]) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


# ----------------------------------------------------------------------------------------------
# executing runs

#: ``train_fn(recipe_dict, run_dir, *, source, observe) -> (summary, observations)``
TrainFn = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


def train_observed(
    recipe: dict[str, Any], run_dir: str | Path, *, source: str, observe: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one run with an :class:`ObservedMethod`; return (summary, observations)."""
    from mtopt.config import recipe_from_dict
    from mtopt.train.trainer import Trainer, build_components

    rec = recipe_from_dict(recipe, source, check=False)
    import torch

    threads = torch.get_num_threads()
    if rec.train.threads is not None:
        torch.set_num_threads(rec.train.threads)
    try:
        dataset, model, method = build_components(rec, rec.train.device, source)
    finally:
        torch.set_num_threads(threads)
    obs = ObservedMethod(method, model, diagnostics=observe == "diagnostics")
    trainer = Trainer(rec, run_dir, source=source, components=(dataset, model, obs))
    summary = trainer.run(overwrite=True)
    return summary, obs.report()


RESULT_FILE = "result.json"


def execute(payload: dict[str, Any], train_fn: TrainFn | None = None) -> dict[str, Any]:
    """Run one planned run (``PlannedRun.payload()``); write and return its result record.

    Any exception of the run is recorded (type, message, traceback tail) with
    ``status: failed``; it does not propagate (KeyboardInterrupt does).
    """

    fn = train_fn or train_observed
    run_dir = Path(payload["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {
        "key": payload["key"],
        "observe": payload["observe"],
        "code": code_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary, observations = fn(
                payload["recipe"], run_dir, source=payload["source"], observe=payload["observe"]
            )
        record.update(
            status="ok",
            tasks=list(summary["tasks"]),
            test=summary["test"],
            val=summary["val"],
            summary={
                k: summary.get(k)
                for k in (
                    "steps",
                    "epochs_completed",
                    "samples",
                    "seconds",
                    "best_epoch",
                    "best_step",
                    "alpha",
                    "solver_status",
                    "warnings",
                )
            },
            observations=observations,
        )
    except Exception as exc:  # recorded, the sweep goes on (the brief: failures are data)
        record.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exc().splitlines(True)[-12:]),
        )
    record["wall_seconds"] = round(time.perf_counter() - t0, 3)
    record["cpu_seconds"] = round(time.process_time() - c0, 3)  # load-independent cost
    atomic_write_json(run_dir / RESULT_FILE, _jsonable(record))
    return record


def _worker_init() -> None:
    import torch

    watch_parent()
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process


def watch_parent(period: float = 1.0) -> None:
    """Exit this process (code 1) soon after its parent dies: a sweep worker must not outlive
    a ``mtopt sweep`` that was killed (SIGTERM / SIGKILL skip the pool's clean-up, and an
    orphaned worker would wait on its task queue forever). The interrupted run is re-trained
    on the next invocation. A daemon thread polls ``os.getppid()``."""
    import threading

    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(period)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=loop, name="mtopt-watch-parent", daemon=True).start()


def _jsonable(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (np.floating, np.integer)):
        return _jsonable(x.item())
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def load_result(run: PlannedRun) -> dict[str, Any] | None:
    """The stored result of a run when its key matches, else None."""
    p = run.run_dir / RESULT_FILE
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if rec.get("key") == run.key else None


@dataclass
class SweepResult:
    """Runs of a finished sweep, the rendered table and where it was written."""

    config: SweepConfig
    runs: list[PlannedRun]
    records: list[dict[str, Any]]
    table: Table
    executed: int
    skipped: int
    failed: int
    wall_seconds: float
    files: dict[str, str]


def run_sweep(
    config: SweepConfig,
    out_dir: str | Path,
    *,
    runs_dir: str | Path | None = None,
    jobs: int = 1,
    threads: int = 1,
    retry_failed: bool = True,
    force: bool = False,
    progress: bool = True,
    train_fn: TrainFn | None = None,
    recipes_dir: Path | None = None,
    command: str | None = None,
) -> SweepResult:
    """Plan, run what is not finished (in parallel with ``jobs``), reduce, write the tables.

    Writes ``table.md``, ``table.csv`` and ``results.json`` into ``out_dir`` (atomically).
    ``force`` re-runs finished runs too (after a code change). ``train_fn`` replaces the real
    trainer (tests); with it, runs execute in this process.
    """
    from tqdm.auto import tqdm

    if jobs < 1:
        raise InputError(f"--jobs: must be >= 1, got {jobs}")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = Path(runs_dir) if runs_dir is not None else out_dir / "runs"
    runs = plan(config, runs_dir, threads=threads, recipes_dir=recipes_dir)
    records: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    seen_keys: dict[str, int] = {}
    dupes: dict[int, int] = {}
    for i, run in enumerate(runs):
        if run.key in seen_keys:  # the same run twice in one sweep (e.g. identical specs)
            dupes[i] = seen_keys[run.key]
            continue
        seen_keys[run.key] = i
        rec = None if force else load_result(run)
        if rec is not None and (rec.get("status") == "ok" or not retry_failed):
            records[i] = rec
        else:
            todo.append(i)
    skipped = len(runs) - len(todo) - len(dupes)
    if config.kind == "timing" or train_fn is not None:
        jobs = 1
    bar = tqdm(total=len(todo), desc=f"{config.name}: runs", disable=not progress or not todo)
    try:
        if jobs == 1 or len(todo) <= 1:
            for i in todo:
                bar.set_postfix_str(_run_name(runs[i]), refresh=False)
                records[i] = _execute_local(runs[i].payload(), train_fn, threads)
                bar.update(1)
        else:
            _execute_parallel(runs, todo, records, jobs, bar)
    finally:
        bar.close()
    for i, j in dupes.items():
        records[i] = records[j]
    ordered = [records[i] for i in range(len(runs))]
    table = reduce(config, runs, ordered)
    failed = sum(1 for i in todo if records[i].get("status") != "ok")
    wall = time.perf_counter() - t0
    files = write_outputs(
        config,
        runs,
        ordered,
        table,
        out_dir,
        wall_seconds=wall,
        executed=len(todo),
        skipped=skipped,
        command=command,
    )
    return SweepResult(config, runs, ordered, table, len(todo), skipped, failed, wall, files)


def _run_name(run: PlannedRun) -> str:
    return f"{run.recipe_label} {run.backbone}+{run.method} s{run.seed}"


def _execute_local(payload: dict[str, Any], train_fn: TrainFn | None, threads: int) -> dict:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return execute(payload, train_fn)
    finally:
        torch.set_num_threads(before)


def _execute_parallel(
    runs: list[PlannedRun],
    todo: list[int],
    records: dict[int, dict[str, Any]],
    jobs: int,
    bar: Any,
) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_worker_init
    ) as pool:
        futures = {pool.submit(execute, runs[i].payload()): i for i in todo}
        for fut in as_completed(futures):
            i = futures[fut]
            records[i] = fut.result()
            bar.set_postfix_str(_run_name(runs[i]), refresh=False)
            bar.update(1)


# ----------------------------------------------------------------------------------------------
# statistics


def welch_greater(a: Sequence[float], b: Sequence[float]) -> float | None:
    """One-sided Welch t-test p-value of ``mean(a) > mean(b)`` (scipy.stats.ttest_ind with
    ``equal_var=False, alternative="greater"``); None with fewer than 2 values per side or when
    both samples are constant (scipy then returns p = 0 or NaN: no evidence either way)."""
    from scipy import stats

    a, b = _clean(a), _clean(b)
    if a is None or b is None or (max(a) == min(a) and max(b) == min(b)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's near-constant-data warning
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    return p if math.isfinite(p) else None


def _clean(x: Sequence[float]) -> list[float] | None:
    """The finite values, or None with fewer than 2 of them."""
    v = [float(t) for t in x if t is not None and math.isfinite(t)]
    return v if len(v) >= 2 else None


def welch_two_sided(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t-test p-value (None when undefined, see :func:`welch_greater`)."""
    from scipy import stats

    a, b = _clean(a), _clean(b)
    if a is None or b is None or (max(a) == min(a) and max(b) == min(b)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def best_rows(means: dict[Any, float | None], decimals: int = DECIMALS) -> set[Any]:
    """Rows whose mean, rounded to ``decimals`` as displayed, equals the column's maximum
    (all tied rows; none when no row has a value)."""
    vals = {k: round(v, decimals) for k, v in means.items() if v is not None and math.isfinite(v)}
    if not vals:
        return set()
    top = max(vals.values())
    return {k for k, v in vals.items() if v == top}


def diff_metric(sim_task: float | None, sim_share: float | None) -> float | None:
    """Diff, PUB paper eq. (1): ``2|Sim_task − Sim_share| / |Sim_task + Sim_share|``."""
    if sim_task is None or sim_share is None:
        return None
    den = abs(sim_task + sim_share)
    return 2.0 * abs(sim_task - sim_share) / den if den > 0 else None


# ----------------------------------------------------------------------------------------------
# tables


@dataclass
class Table:
    """A reduced sweep: markdown text, CSV rows (tidy) and JSON-ready data."""

    title: str
    markdown: str
    csv_rows: list[dict[str, Any]]
    data: dict[str, Any]


def _fmt(x: float | None, d: int = DECIMALS) -> str:
    return "—" if x is None else f"{x:.{d}f}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 1e-3 else f"{p:.3f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _values(records: Sequence[dict[str, Any]], task: str) -> list[float]:
    out = []
    for r in records:
        if r.get("status") != "ok":
            continue
        v = r["test"]["auc_avg"] if task == "__avg__" else r["test"]["auc"].get(task)
        if v is not None and math.isfinite(v):
            out.append(float(v))
    return out


def _stats(vals: Sequence[float]) -> dict[str, Any]:
    n = len(vals)
    return {
        "n": n,
        "mean": float(np.mean(vals)) if n else None,
        "std": float(np.std(vals, ddof=1)) if n > 1 else None,
        "values": [float(v) for v in vals],
    }


def _row_order(runs: Sequence[PlannedRun], config: SweepConfig) -> list[tuple[str, str]]:
    """(backbone, method) rows: STL, the plain backbones, then each method on each backbone."""
    rows: list[tuple[str, str]] = []
    for run in runs:
        k = (run.backbone, run.method)
        if k not in rows:
            rows.append(k)
    base = [r for r in rows if r[1] == config.baseline]
    stl = [r for r in base if r[0] == "STL"]
    plain = [r for r in base if r[0] != "STL"]
    others = [r for r in rows if r[1] != config.baseline]
    by_method: dict[str, list[tuple[str, str]]] = {}
    for r in others:
        by_method.setdefault(r[1], []).append(r)
    return stl + plain + [r for m in by_method.values() for r in m]


def row_name(backbone: str, method: str, baseline: str) -> str:
    """``MMoE`` for the plain backbone, ``STL``, else ``MMoE+PUB``."""
    if method == baseline:
        return backbone
    return f"{backbone}+{method}"


def _groups(
    runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    g: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run, rec in zip(runs, records):
        g.setdefault((run.recipe_label, run.backbone, run.method), []).append(rec)
    return g


def _recipe_tasks(
    runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> dict[str, list[str]]:
    tasks: dict[str, list[str]] = {}
    for run, rec in zip(runs, records):
        tasks.setdefault(run.recipe_label, [])
        if rec.get("status") == "ok" and not tasks[run.recipe_label]:
            tasks[run.recipe_label] = list(rec["tasks"])
    return tasks


def auc_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Table III / IV: per recipe, test AUC per task and average (mean ± std over seeds);
    ``‡`` when significantly better than the plain backbone (one-sided Welch, p < 0.05);
    the best value per column in bold (at the 4 decimals shown)."""
    groups = _groups(runs, records)
    tasks = _recipe_tasks(runs, records)
    rows = _row_order(runs, config)
    columns = [(r, t) for r in tasks for t in [*tasks[r], "__avg__"]]
    cells: dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]] = {}
    for col in columns:
        recipe, task = col
        for row in rows:
            st = _stats(_values(groups.get((recipe, *row), []), task))
            base_row = (row[0], config.baseline)
            st["p"] = None
            if row[1] != config.baseline and base_row in rows:
                base = _values(groups.get((recipe, *base_row), []), task)
                st["p"] = welch_greater(st["values"], base)
            st["significant"] = st["p"] is not None and st["p"] < ALPHA_LEVEL
            cells[(row, col)] = st
        for row in best_rows({row: cells[(row, col)]["mean"] for row in rows}):
            cells[(row, col)]["best"] = True
    multi = len(tasks) > 1

    def head(col: tuple[str, str]) -> str:
        t = "Average" if col[1] == "__avg__" else col[1]
        return f"{col[0]}: {t}" if multi else t

    md_rows = []
    csv_rows = []
    for row in rows:
        name = row_name(*row, config.baseline)
        line = [name]
        for col in columns:
            c = cells[(row, col)]
            text = _fmt(c["mean"])
            if c["n"] > 1:
                text += f" ± {_fmt(c['std'])}"
            if c.get("best"):
                text = f"**{text}**"
            if c["significant"]:
                text += " ‡"
            line.append(text)
            csv_rows.append(
                {
                    "recipe": col[0],
                    "row": name,
                    "backbone": row[0],
                    "method": row[1],
                    "column": "average" if col[1] == "__avg__" else col[1],
                    "n": c["n"],
                    "mean": c["mean"],
                    "std": c["std"],
                    "p_vs_backbone": c["p"],
                    "significant": int(c["significant"]),
                    "best": int(bool(c.get("best"))),
                }
            )
        md_rows.append(line)
    md = _md_table(["Method", *[head(c) for c in columns]], md_rows)
    seeds = ", ".join(str(s) for s in config.seeds)
    md += (
        f"\n\nTest AUC of the best-validation checkpoint, mean ± std over seeds {seeds} "
        f"(sample std). ‡: better than the plain backbone ({config.baseline}) with p < "
        f"{ALPHA_LEVEL} (one-sided Welch t-test over seeds). Bold: best in the column at "
        f"{DECIMALS} decimals."
    )
    data = {
        "columns": [{"recipe": c[0], "task": c[1]} for c in columns],
        "rows": [
            {
                "name": row_name(*row, config.baseline),
                "backbone": row[0],
                "method": row[1],
                "cells": [cells[(row, col)] for col in columns],
            }
            for row in rows
        ],
    }
    return Table(f"{config.name}: test AUC", md, csv_rows, data)


def timing_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Table V: seconds per training epoch (wall and CPU), ratio to the plain backbone,
    milliseconds per step and per solve."""
    groups = _groups(runs, records)
    rows = _row_order(runs, config)
    recipes = list(dict.fromkeys(r.recipe_label for r in runs))

    def per_epoch(rec: dict[str, Any], key: str | None) -> float | None:
        epochs = max(rec["summary"]["epochs_completed"] or 1, 1)
        if key is None:  # wall seconds of the training loop (evaluation excluded)
            summ = rec["summary"]
            value = summ.get("train_seconds", summ["seconds"])
        else:
            value = rec["observations"].get(key)
        return None if value is None else value / epochs

    def stat(recs: list[dict[str, Any]], key: str | None) -> float | None:
        vals = [per_epoch(r, key) for r in recs]
        return _mean([v for v in vals if v is not None])

    def obs(recs: list[dict[str, Any]], key: str) -> float | None:
        return _mean([r["observations"][key] for r in recs if r["observations"].get(key)])

    md_rows, csv_rows = [], []
    for recipe in recipes:
        ok = {
            row: [r for r in groups.get((recipe, *row), []) if r.get("status") == "ok"]
            for row in rows
        }
        base = {
            row[0]: (stat(ok[row], None), stat(ok[row], "loop_cpu_seconds"))
            for row in rows
            if row[1] == config.baseline
        }
        for row in rows:
            wall, cpu = stat(ok[row], None), stat(ok[row], "loop_cpu_seconds")
            cpus = [per_epoch(r, "loop_cpu_seconds") for r in ok[row]]
            cpus = [c for c in cpus if c is not None]
            cpu_sd = float(np.std(cpus, ddof=1)) if len(cpus) > 1 else None
            bw, bc = base.get(row[0], (None, None))
            ratio_wall = wall / bw if wall is not None and bw else None
            ratio_cpu = cpu / bc if cpu is not None and bc else None
            step_cpu = obs(ok[row], "step_cpu_seconds_mean")
            solve = obs(ok[row], "solve_seconds_mean")
            solves = sum(r["observations"]["solves"] for r in ok[row])
            name = row_name(*row, config.baseline)
            md_rows.append(
                [
                    recipe,
                    name,
                    _fmt(cpu, 2) + ("" if cpu_sd is None else f" ± {cpu_sd:.2f}"),
                    _fmt(ratio_cpu, 2),
                    _fmt(wall, 2),
                    _fmt(ratio_wall, 2),
                    _fmt(None if step_cpu is None else 1e3 * step_cpu, 1),
                    _fmt(None if solve is None else 1e3 * solve, 3),
                    str(solves),
                ]
            )
            csv_rows.append(
                {
                    "recipe": recipe,
                    "row": name,
                    "backbone": row[0],
                    "method": row[1],
                    "cpu_seconds_per_epoch": cpu,
                    "cpu_seconds_per_epoch_std": cpu_sd,
                    "cpu_ratio_to_backbone": ratio_cpu,
                    "wall_seconds_per_epoch": wall,
                    "wall_ratio_to_backbone": ratio_wall,
                    "cpu_ms_per_step": None if step_cpu is None else 1e3 * step_cpu,
                    "ms_per_solve": None if solve is None else 1e3 * solve,
                    "solves": solves,
                    "runs": len(ok[row]),
                }
            )
    md = _md_table(
        [
            "Recipe",
            "Method",
            "CPU s / epoch",
            "× backbone",
            "wall s / epoch",
            "× backbone",
            "CPU ms / step",
            "ms / solve",
            "solves",
        ],
        md_rows,
    )
    md += (
        "\n\nCPU s / epoch: process CPU time of the training loop (first step to last step: "
        "data, forward passes, the method's steps; no evaluation, train.eval_every is set past "
        "the end) per epoch, one thread, so it does not depend on other load on the machine. "
        "wall s / epoch: the trainer's wall-clock seconds per epoch (affected by other load). "
        "CPU ms / step: the method's step alone (backward passes + update). ms / solve: α "
        "solver wall time per solve. Mean (± sample std) over the runs of each row (one per "
        "seed), executed one at a time; ratios are of the means."
    )
    return Table(f"{config.name}: time per epoch", md, csv_rows, {"rows": csv_rows})


def solver_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Solver backends vs training outcome: AUCs, time per solve, share of failed solves."""
    groups = _groups(runs, records)
    tasks = _recipe_tasks(runs, records)
    rows = _row_order(runs, config)
    md_rows, csv_rows = [], []
    for recipe, ts in tasks.items():
        for row in rows:
            recs = groups.get((recipe, *row), [])
            ok = [r for r in recs if r.get("status") == "ok"]
            statuses: dict[str, int] = {}
            for r in ok:
                for k, v in r["observations"]["statuses"].items():
                    statuses[k] = statuses.get(k, 0) + v
            attempted = sum(v for k, v in statuses.items() if k != "reused")
            failed = sum(v for k, v in statuses.items() if k not in ("ok", "reused"))
            share = failed / attempted if attempted else None
            solve = _mean(
                [
                    r["observations"]["solve_seconds_mean"]
                    for r in ok
                    if r["observations"]["solve_seconds_mean"] is not None
                ]
            )
            median = _mean(
                [
                    r["observations"]["solve_seconds_median"]
                    for r in ok
                    if r["observations"].get("solve_seconds_median") is not None
                ]
            )
            res = [
                r["observations"]["residual_max"]
                for r in ok
                if r["observations"]["residual_max"] is not None
            ]
            aucs = {t: _stats(_values(recs, t)) for t in [*ts, "__avg__"]}
            name = row[1] if len({r[0] for r in rows}) == 1 else f"{row[0]}+{row[1]}"

            def cell(s: dict[str, Any]) -> str:
                txt = _fmt(s["mean"])
                return txt + (f" ± {_fmt(s['std'])}" if s["n"] > 1 else "")

            md_rows.append(
                [
                    recipe,
                    name,
                    *[cell(aucs[t]) for t in [*ts, "__avg__"]],
                    _fmt(None if solve is None else 1e3 * solve, 3),
                    _fmt(None if median is None else 1e3 * median, 3),
                    str(attempted),
                    "—" if share is None else f"{100 * share:.1f}%",
                    "—" if not res else f"{max(res):.1e}",
                    f"{len(ok)}/{len(recs)}",
                ]
            )
            csv_rows.append(
                {
                    "recipe": recipe,
                    "row": name,
                    **{
                        f"auc_{'average' if t == '__avg__' else t}_{k}": aucs[t][k]
                        for t in [*ts, "__avg__"]
                        for k in ("mean", "std")
                    },
                    "ms_per_solve": None if solve is None else 1e3 * solve,
                    "ms_per_solve_median": None if median is None else 1e3 * median,
                    "solves": attempted,
                    "failed_share": share,
                    "statuses": json.dumps(statuses, sort_keys=True),
                    "residual_max": max(res) if res else None,
                    "runs_ok": len(ok),
                    "runs": len(recs),
                }
            )
    first = next(iter(tasks.values()), [])
    header = ["Recipe", "Solver", *first, "Average", "ms / solve", "median ms", "solves"]
    header += ["failed", "max r"]
    md = _md_table([*header, "runs ok"], md_rows)
    md += (
        "\n\nTest AUC mean ± std over seeds. failed: share of attempted solves whose status "
        "was not `ok` (`not_converged`, `pareto_stationary`); PUB then keeps the previous α. "
        "max r: largest residual maxᵢ|αᵢ(Gα)ᵢ − 1| of any solve. ms / solve (mean; median: "
        "mean over runs of each run's median) excludes CVXPY's one-time compilation."
    )
    return Table(f"{config.name}: solver backends", md, csv_rows, {"rows": csv_rows})


def diagnostics_table(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """Table I / §III: mean cos(gradient, update) on task-specific and shared parameters per
    method, Welch's t-test (two-sided, per-step values pooled over runs) against the
    baseline, Diff (eq. (1)) and the Diff-vs-AUC pair analysis of Fig. 4 (a binomial test in
    place of the paper's χ², whose 2x2 table depends on how the pairs are oriented)."""
    from scipy import stats

    methods = list(dict.fromkeys(r.method for r in runs))
    pooled: dict[str, dict[str, list[float]]] = {}
    per_run: list[dict[str, Any]] = []
    for run, rec in zip(runs, records):
        if rec.get("status") != "ok":
            continue
        ob = rec["observations"]
        ct = [x for x in ob.get("cos_task", []) if x is not None]
        cs = [x for x in ob.get("cos_shared", []) if x is not None]
        tg = [x for x in ob.get("task_grad_cos", []) if x is not None]
        d = pooled.setdefault(run.method, {"task": [], "share": [], "tg": [], "auc": []})
        d["task"] += ct
        d["share"] += cs
        d["tg"] += tg
        if rec["test"]["auc_avg"] is not None:
            d["auc"].append(rec["test"]["auc_avg"])
        st, ss = _mean(ct), _mean(cs)
        per_run.append(
            {
                "recipe": run.recipe_label,
                "backbone": run.backbone,
                "method": run.method,
                "seed": run.seed,
                "sim_task": st,
                "sim_share": ss,
                "diff": diff_metric(st, ss),
                "auc_avg": rec["test"]["auc_avg"],
                "task_grad_cos": _mean(tg),
            }
        )
    base = pooled.get(config.baseline, {"task": [], "share": []})
    md_rows, csv_rows = [], []
    for m in methods:
        d = pooled.get(m)
        if d is None:
            md_rows.append([m, *["—"] * 8])
            continue
        st, ss = _mean(d["task"]), _mean(d["share"])
        pt = None if m == config.baseline else welch_two_sided(d["task"], base["task"])
        ps = None if m == config.baseline else welch_two_sided(d["share"], base["share"])
        diffs = [r["diff"] for r in per_run if r["method"] == m and r["diff"] is not None]
        row = {
            "method": m,
            "sim_task": st,
            "p_task": pt,
            "sim_share": ss,
            "p_share": ps,
            "diff_of_means": diff_metric(st, ss),
            "diff_mean_over_runs": _mean(diffs),
            "auc_avg": _mean(d["auc"]),
            "task_grad_cos": _mean(d["tg"]),
            "steps": len(d["share"]),
        }
        csv_rows.append(row)
        md_rows.append(
            [
                m,
                _fmt(st, 3),
                _fmt_p(pt),
                _fmt(ss, 3),
                _fmt_p(ps),
                _fmt(row["diff_of_means"], 3),
                _fmt(row["diff_mean_over_runs"], 3),
                _fmt(row["auc_avg"]),
                _fmt(row["task_grad_cos"], 3),
            ]
        )
    md = _md_table(
        [
            "Method",
            "Sim_task",
            "p",
            "Sim_share",
            "p",
            "Diff",
            "Diff (runs)",
            "avg AUC",
            "cos(g₁,g₂)",
        ],
        md_rows,
    )
    # Fig. 4: within the same recipe/backbone/seed, does higher AUC go with lower Diff?
    # Each unordered pair of methods is counted in both orders (so the 2x2 table does not
    # depend on the order methods are listed in); the test is a two-sided binomial test of the
    # share of pairs where the higher-AUC method has the lower Diff against 1/2.
    cont = np.zeros((2, 2), dtype=int)
    cells: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in per_run:
        cells.setdefault((r["recipe"], r["backbone"], r["seed"]), []).append(r)
    reverse_pairs = 0
    pairs = 0
    for group in cells.values():
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                a, b = group[i], group[j]
                if None in (a["auc_avg"], b["auc_avg"], a["diff"], b["diff"]):
                    continue
                if a["auc_avg"] == b["auc_avg"] or a["diff"] == b["diff"]:
                    continue
                x, y = int(a["auc_avg"] > b["auc_avg"]), int(a["diff"] > b["diff"])
                cont[x, y] += 1
                cont[1 - x, 1 - y] += 1
                pairs += 1
                reverse_pairs += int(x != y)
    reverse = reverse_pairs / pairs if pairs else None
    binom = float(stats.binomtest(reverse_pairs, pairs, 0.5).pvalue) if pairs else None
    md += (
        "\n\nSim: mean over training steps (pooled over runs) of the cosine between the gradient "
        "a method feeds its optimiser and the parameter update, on task-specific (towers) and "
        "shared parameters. p: two-sided Welch t-test of the per-step values against "
        f"{config.baseline} (steps are autocorrelated, so these p-values are optimistic). Diff = "
        "2|Sim_task − Sim_share| / |Sim_task + Sim_share| (paper eq. (1)) of the means; "
        "'Diff (runs)' averages the per-run Diff. cos(g₁,g₂): mean cosine between the two "
        "tasks' shared-parameter gradients (the conflict level)."
    )
    if pairs:
        md += (
            f"\n\nFig. 4 analogue: {pairs} pairs of methods trained on the same recipe, backbone "
            f"and seed; in {reverse_pairs} ({100 * (reverse or 0):.0f}%) the method with the "
            f"higher average AUC has the lower Diff (two-sided binomial test against 50%: p = "
            f"{_fmt_p(binom)}). Both orders of each pair: [[AUC<, Diff<; AUC<, Diff>], "
            f"[AUC>, Diff<; AUC>, Diff>]] = {cont.tolist()}."
        )
    data = {
        "methods": csv_rows,
        "runs": per_run,
        "contingency": cont.tolist(),
        "pairs": pairs,
        "reverse_pairs": reverse_pairs,
        "reverse_share": reverse,
        "binomial_p": binom,
    }
    return Table(f"{config.name}: gradient vs update", md, csv_rows, data)


REDUCERS: dict[str, Callable[..., Table]] = {
    "auc": auc_table,
    "timing": timing_table,
    "diagnostics": diagnostics_table,
    "solvers": solver_table,
}


def reduce(
    config: SweepConfig, runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]
) -> Table:
    """The table of ``config.kind`` for these runs and their result records."""
    return REDUCERS[config.kind](config, runs, records)


def failed_runs(runs: Sequence[PlannedRun], records: Sequence[dict[str, Any]]) -> list[dict]:
    """``[{run, error, dir}]`` of every failed run."""
    return [
        {"run": _run_name(run), "error": rec.get("error"), "dir": str(run.run_dir)}
        for run, rec in zip(runs, records)
        if rec.get("status") != "ok"
    ]


def write_outputs(
    config: SweepConfig,
    runs: Sequence[PlannedRun],
    records: Sequence[dict[str, Any]],
    table: Table,
    out_dir: Path,
    *,
    wall_seconds: float,
    executed: int,
    skipped: int,
    command: str | None = None,
) -> dict[str, str]:
    """Write ``table.md``, ``table.csv`` and ``results.json`` (atomically); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fails = failed_runs(runs, records)
    run_seconds = sum(r.get("wall_seconds", 0.0) for r in records)
    cpu_seconds = sum(r.get("cpu_seconds", 0.0) or 0.0 for r in records)
    md = [f"## {table.title}", ""]
    if config.description:
        md += [config.description, ""]
    if command:
        md += [f"Regenerate: `{command}`", ""]
    md += [table.markdown, ""]
    md += [
        f"{len(runs)} runs ({executed} executed now, {skipped} reused from earlier sweeps); "
        f"this invocation took {wall_seconds:.0f} s wall; the runs themselves "
        f"{run_seconds:.0f} s wall and {cpu_seconds:.0f} s CPU in total (sums over runs, "
        "measured when each was trained).",
        "",
    ]
    if fails:
        md += [f"**{len(fails)} failed run(s)** (excluded from the table):", ""]
        md += [f"- {f['run']}: `{f['error']}`" for f in fails]
        md.append("")
    if config.paper:
        md += ["Paper, for comparison:", "", config.paper, ""]
    paths = {
        "markdown": str(atomic_write_text(out_dir / "table.md", "\n".join(md))),
    }
    buf = io.StringIO()
    if table.csv_rows:
        cols = list(dict.fromkeys(k for r in table.csv_rows for k in r))
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in table.csv_rows:
            w.writerow({k: "" if r.get(k) is None else r.get(k) for k in cols})
    paths["csv"] = str(atomic_write_text(out_dir / "table.csv", buf.getvalue()))
    doc = {
        "name": config.name,
        "kind": config.kind,
        "description": config.description,
        "command": command,
        "config": {
            "recipes": config.recipes,
            "backbones": [b.key for b in config.backbones],
            "methods": [{"label": method_label(m), "spec": m.key} for m in config.methods],
            "seeds": config.seeds,
            "overrides": config.overrides,
            "baseline": config.baseline,
            "stl": config.stl,
        },
        "wall_seconds": round(wall_seconds, 3),
        "run_seconds": round(run_seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "executed": executed,
        "skipped": skipped,
        "failed": fails,
        "table": table.data,
        "runs": [
            {
                "recipe": run.recipe_label,
                "backbone": run.backbone,
                "method": run.method,
                "seed": run.seed,
                "key": run.key,
                "dir": str(run.run_dir),
                "dropped_model_keys": run.dropped_model_keys,
                "result": {k: v for k, v in rec.items() if k != "observations"}
                | {"observations": _short_obs(rec.get("observations"))},
            }
            for run, rec in zip(runs, records)
        ],
    }
    paths["json"] = str(atomic_write_json(out_dir / "results.json", _jsonable(doc)))
    return paths


def _short_obs(obs: dict[str, Any] | None) -> dict[str, Any] | None:
    """Observations without the per-step series (those stay in each run's result.json)."""
    if obs is None:
        return None
    return {k: v for k, v in obs.items() if not isinstance(v, list)}


def paired_comparison(
    doc: dict[str, Any], a: str, b: str, metric: str = "average", source: str = "results.json"
) -> dict[str, Any]:
    """Method ``a`` against method ``b`` on the runs of one sweep (its ``results.json`` as a
    dict), paired by (recipe, backbone, seed): the runs share data, initialisation and batch
    order, so the per-seed differences are the right unit (a Welch test across seeds ignores
    the pairing). ``metric``: ``average`` (test AUC averaged over tasks) or a task name.

    Returns per (recipe, backbone) and overall: ``n``, ``mean_diff`` (a − b), ``wins`` (a > b),
    and overall the two-sided paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon
    signed-rank (``scipy.stats.wilcoxon``) p-values (None when undefined: < 2 pairs, or all
    differences 0).
    """
    from scipy import stats

    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list):
        raise InputError(f"{source}: not a sweep's results.json (no 'runs' list)")

    def value(res: Any) -> float | None:
        if not isinstance(res, dict) or res.get("status") != "ok":
            return None
        test = res.get("test") or {}
        v = test.get("auc_avg") if metric == "average" else (test.get("auc") or {}).get(metric)
        return float(v) if v is not None and math.isfinite(float(v)) else None

    labels = sorted({str(r.get("method")) for r in runs})
    found = {}
    for want in (a, b):
        match = [m for m in labels if m.lower() == want.lower()]
        if not match:
            raise InputError(
                f"{source}: no method {want!r} in this sweep; its methods: {', '.join(labels)}"
            )
        found[want] = match[0]
    vals: dict[tuple[str, str, str, int], float] = {}
    for r in runs:
        v = value(r.get("result"))
        if v is not None:
            vals[(str(r["recipe"]), str(r["backbone"]), str(r["method"]), int(r["seed"]))] = v
    cells: dict[tuple[str, str], list[float]] = {}
    for (rec, bb, m, seed), va in vals.items():
        vb = vals.get((rec, bb, found[b], seed))
        if m == found[a] and vb is not None:
            cells.setdefault((rec, bb), []).append(va - vb)
    if not cells:
        raise InputError(
            f"{source}: no (recipe, backbone, seed) with a finished run of both {a!r} and {b!r}"
            + ("" if metric == "average" else f" and a test AUC for task {metric!r}")
        )
    diffs = [d for ds in cells.values() for d in ds]

    def summary(ds: list[float]) -> dict[str, Any]:
        return {
            "n": len(ds),
            "mean_diff": float(np.mean(ds)),
            "wins": sum(d > 0 for d in ds),
            "losses": sum(d < 0 for d in ds),
        }

    overall = summary(diffs)
    t_p = w_p = None
    if len(diffs) >= 2 and any(d != 0 for d in diffs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            t_p = float(stats.ttest_rel(diffs, [0.0] * len(diffs)).pvalue)
            w_p = float(stats.wilcoxon(diffs).pvalue)
    overall["t_test_p"] = t_p if t_p is not None and math.isfinite(t_p) else None
    overall["wilcoxon_p"] = w_p if w_p is not None and math.isfinite(w_p) else None
    return {
        "a": found[a],
        "b": found[b],
        "metric": metric,
        "cells": [
            {"recipe": rec, "backbone": bb, **summary(ds)}
            for (rec, bb), ds in sorted(cells.items())
        ],
        "overall": overall,
    }


def paired_markdown(res: dict[str, Any]) -> str:
    """:func:`paired_comparison` as a Markdown table plus one summary line."""
    lines = [
        f"| recipe | backbone | pairs | mean {res['a']} − {res['b']} | {res['a']} higher |",
        "|---|---|---|---|---|",
    ]
    for c in res["cells"]:
        lines.append(
            f"| {c['recipe']} | {c['backbone']} | {c['n']} | {c['mean_diff']:+.4f} | "
            f"{c['wins']}/{c['n']} |"
        )
    o = res["overall"]

    def fmt(p: float | None) -> str:
        return "undefined" if p is None else ("< 0.001" if p < 0.001 else f"= {p:.3f}")

    lines.append(
        f"| all | | {o['n']} | {o['mean_diff']:+.4f} | {o['wins']}/{o['n']} |\n\n"
        f"Test AUC ({res['metric']}), paired by (recipe, backbone, seed): paired t-test "
        f"p {fmt(o['t_test_p'])}, Wilcoxon signed-rank p {fmt(o['wilcoxon_p'])} "
        "(two-sided)."
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# the paper's experiments as presets

REGIMES = ["regime-low-conflict.yaml", "regime-high-conflict.yaml", "regime-imbalance.yaml"]
IMBALANCE = ["regime-imbalance.yaml"]

#: per size: overrides applied to every recipe (``standard`` = the recipes as shipped)
SIZE_OVERRIDES: dict[str, list[str]] = {
    # 30k training rows x 3 epochs of 1024 = 90 steps per run
    "quick": ["data.n_train=30000", "train.epochs=3"],
    "standard": [],
    # the PUB paper's set-up (VI-A): expert width 128, embeddings 16, towers 64, batch 4096,
    # lr 1e-3, 5 epochs, on 200k training rows (AliExpress_ES has 22.3M: use the real file)
    "full": [
        "data.n_train=200000",
        "data.n_val=50000",
        "data.n_test=50000",
        "model.expert_dim=128",
        "model.embed_dim=16",
        "model.tower_dims=[64]",
        "optimizer.batch_size=4096",
        "optimizer.lr=0.001",
        "train.epochs=5",
    ],
}
SEEDS = {"quick": [0, 1], "standard": [0, 1, 2, 3, 4], "full": [0, 1, 2, 3, 4]}

PAPER_TABLE3_ES = """| Method (AliExpress_ES) | CTR | CTCVR | Average |
|---|---|---|---|
| Single Task Learning | 0.7252 | 0.8832 | 0.8042 |
| MMOE | 0.7290 | 0.8959 | 0.8124 |
| PLE | 0.7306 | 0.8930 | 0.8118 |
| MMOE+MGDA | 0.7294 | 0.8901 | 0.8098 |
| MMOE+NashMTL | 0.7285 | 0.8957 | 0.8121 |
| MMOE+IMTL-G | 0.7275 | 0.8922 | 0.8098 |
| MMOE+PCGrad | 0.7301‡ | 0.8915 | 0.8108 |
| MMOE+CAGrad | 0.7296 | 0.8934 | 0.8115 |
| MMOE+Uncertainty | 0.7286 | 0.8932 | 0.8109 |
| MMOE+FAMO | 0.7295 | 0.8941 | 0.8118 |
| MMOE+PUB | 0.7323‡ | 0.8967‡ | 0.8145‡ |
| PLE+PUB | 0.7318‡ | 0.8965‡ | 0.8142‡ |

(Table III, ES columns, excerpt; 5 seeds. The paper: PUB improves the average AUC significantly
with both backbones on all 4 countries; only 2 of 80 baseline averages beat their backbone.)"""

PAPER_TABLE4 = """| Method (AliExpress_ES) | CTR | CTCVR | Average |
|---|---|---|---|
| MMOE | 0.7290 | 0.8959 | 0.8124 |
| MMOE+PUB | 0.7316† | 0.8952 | 0.8134† |
| MMOE+PUB+Clippy | 0.7329† | 0.8954 | 0.8145† |
| MMOE+PUB+AdaTask | 0.7320 | 0.8962† | 0.8141† |
| PLE | 0.7306 | 0.8930 | 0.8118 |
| PLE+PUB | 0.7316† | 0.8946† | 0.8131† |
| PLE+PUB+Clippy | 0.7327† | 0.8942† | 0.8135† |
| PLE+PUB+AdaTask | 0.7315† | 0.8959† | 0.8137† |"""

PAPER_TABLE5 = """| Model | Base | NashMTL | PUB |
|---|---|---|---|
| MMOE | 558.26 | 702.31 (1.26×) | 651.36 (1.17×) |
| PLE | 844.24 | 1050.65 (1.24×) | 984.25 (1.17×) |

(seconds per epoch on AliExpress_ES, 22.3M rows, batch 4096, PUB solving every 10 steps;
"a noticeable drop in overall performance" when solving only every 100 steps.)"""

PAPER_TABLE1 = """| Method | Sim_task | p | Sim_share | p |
|---|---|---|---|---|
| LS | 0.130 | | 0.116 | |
| MGDA | 0.138 | 0.111 | 0.106 | 0.011 |
| IMTL-G | 0.128 | 0.483 | 0.102 | 0.017 |
| NashMTL | 0.144 | 0.052 | 0.1228 | 0.045 |

(AliExpress, Shared-Bottom / MMoE / PLE, 3 seeds; Fig. 4: 70% of pairs show higher AUC with
lower Diff, χ²(1) = 13.67, p < 0.001. PUB is not in the paper's Table I.)"""


def _m(text: str, label: str | None = None) -> Spec:
    return Spec.parse(text, label)


def _table3(size: str) -> SweepConfig:
    if size == "quick":
        return SweepConfig(
            name="table3-quick",
            recipes=IMBALANCE,
            backbones=[_m("mmoe")],
            methods=[_m("ls"), _m("mgda"), _m("nashmtl"), _m("famo"), _m("pub")],
            seeds=SEEDS[size],
            overrides=SIZE_OVERRIDES[size],
            description=(
                "Table III analogue, quick preset: the 23x loss-imbalance synthetic regime "
                "(30k training rows, 3 epochs = 90 steps of 1024), MMoE, LS (the plain "
                "backbone) vs MGDA, NashMTL, FAMO and PUB (defaults: newton, solve every 1, "
                "frobenius α scale), 2 seeds. PUB's shared step is about n times Adam's at "
                "the same lr (docs/results.md, 'Is it the step size?')."
            ),
            paper=PAPER_TABLE3_ES,
        )
    methods = ["ls", "mgda", "nashmtl", "imtl_g", "pcgrad", "cagrad", "uncertainty", "famo", "pub"]
    if size == "full":
        methods += ["banditmtl", "clippy-adam", "adatask"]
    return SweepConfig(
        name=f"table3-{size}",
        recipes=REGIMES,
        backbones=[_m("mmoe"), _m("ple[expert_dim=64]" if size == "standard" else "ple")],
        methods=[_m(x) for x in methods],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        stl=True,
        description=(
            f"Table III analogue, {size} preset: the three synthetic regimes (low conflict, high "
            f"conflict, 23x loss imbalance{'' if size == 'standard' else ', paper-scale model'}"
            f"), STL, MMoE and PLE, methods {', '.join(methods)}, seeds {SEEDS[size]}. One "
            "learning rate for every method (the recipes' Adam lr unless --set "
            "optimizer.lr=...); PUB's shared step is about n times Adam's at the same lr, so "
            "compare at tuned learning rates too (docs/results.md, 'Is it the step size?')."
        ),
        paper=PAPER_TABLE3_ES,
    )


def _table4(size: str) -> SweepConfig:
    ple = "ple[expert_dim=64]" if size != "full" else "ple"
    return SweepConfig(
        name=f"table4-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe"), _m(ple, "PLE")],
        methods=[
            _m("ls"),
            _m("pub[solve_every=10]", "PUB"),
            _m("pub-clippy[solve_every=10]", "PUB+Clippy"),
            _m("pub-adatask[solve_every=10]", "PUB+AdaTask"),
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        description=(
            f"Table IV analogue, {size} preset: PUB alone and with the Clippy and AdaTask UMMs "
            "(α solved every 10 steps, as in the paper) vs the plain MMoE and PLE, on the 23x "
            f"loss-imbalance regime, seeds {SEEDS[size]}."
        ),
        paper=PAPER_TABLE4,
    )


def _ablations(size: str) -> SweepConfig:
    return SweepConfig(
        name=f"ablations-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe")],
        methods=[
            _m("ls"),
            _m("pub[alpha_scale=frobenius,solve_every=1]", "PUB frobenius k=1"),
            _m("pub[alpha_scale=exact,solve_every=1]", "PUB exact k=1"),
            _m("pub[alpha_scale=frobenius,solve_every=10]", "PUB frobenius k=10"),
            _m("pub[alpha_scale=frobenius,solve_every=100]", "PUB frobenius k=100"),
            _m("pub[fixed_alpha=1]", "PUB α=1"),
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        description=(
            f"PUB ablations, {size} preset, 23x loss-imbalance regime, MMoE: α scale exact vs "
            "frobenius, solving every k = 1 / 10 / 100 steps, and α fixed at 1 (the sum of the "
            "per-task updates: what PUB does when its solver silently fails). ‡ compares with "
            f"the plain backbone (LS). Seeds {SEEDS[size]}."
        ),
    )


def _table5(size: str) -> SweepConfig:
    over = list(SIZE_OVERRIDES[size]) + ["train.eval_every=1000000000"]
    if size == "quick":
        over += ["train.epochs=2"]
    return SweepConfig(
        name=f"table5-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe"), _m("ple[expert_dim=64]" if size != "full" else "ple", "PLE")],
        methods=[
            _m("ls", "Base"),
            _m("nashmtl", "NashMTL"),
            _m("nashmtl[update_weights_every=10]", "NashMTL k=10"),
            _m("pub[solve_every=1]", "PUB k=1"),
            _m("pub[solve_every=10]", "PUB k=10"),
        ],
        seeds=[0, 1, 2] if size != "full" else SEEDS[size],
        overrides=over,
        kind="timing",
        baseline="Base",
        description=(
            f"Table V analogue, {size} preset: seconds per training epoch of the plain backbone "
            "(LS), NashMTL (solving every step, and every 10) and PUB (every step, every 10) on "
            "the same data; each row is the mean of one run per seed (seeds "
            f"{[0, 1, 2] if size != 'full' else SEEDS[size]}: single timings vary by ~20% on "
            "a shared machine), one run at a time, one thread."
        ),
        paper=PAPER_TABLE5,
    )


def _table1(size: str) -> SweepConfig:
    quick = size == "quick"
    return SweepConfig(
        name=f"table1-{size}",
        recipes=IMBALANCE if quick else REGIMES,
        backbones=(
            [_m("mmoe")]
            if quick
            else [
                _m("shared-bottom"),
                _m("mmoe"),
                _m("ple[expert_dim=64]" if size != "full" else "ple", "PLE"),
            ]
        ),
        methods=[_m("ls"), _m("mgda"), _m("imtl_g"), _m("nashmtl"), _m("pub")],
        seeds=SEEDS["quick"] if quick else [0, 1, 2],  # the paper's Table I: 3 seeds
        overrides=SIZE_OVERRIDES[size],
        kind="diagnostics",
        description=(
            f"Table I / §III analogue, {size} preset: cosine of gradient vs update on "
            "task-specific and shared parameters at every step for LS, MGDA, IMTL-G, NashMTL "
            "and PUB"
            + (" on MMoE, 23x imbalance regime" if quick else " on 3 backbones x 3 regimes")
            + "."
        ),
        paper=PAPER_TABLE1,
    )


def _solvers(size: str) -> SweepConfig:
    return SweepConfig(
        name=f"solvers-{size}",
        recipes=IMBALANCE,
        backbones=[_m("mmoe")],
        methods=[
            _m(f"pub[solver={s},solve_every=1]", s)
            for s in ("newton", "ccp", "ccp-raw", "fixed-point", "closed-form")
        ],
        seeds=SEEDS[size],
        overrides=SIZE_OVERRIDES[size],
        kind="solvers",
        baseline="newton",
        description=(
            f"α solver backends vs training outcome, {size} preset: PUB on MMoE, 23x imbalance "
            "regime, solving every step (frobenius α scale) with each backend, seeds "
            f"{SEEDS[size]}."
        ),
    )


#: experiment name -> (one-line description, builder(size) -> SweepConfig)
EXPERIMENTS: dict[str, tuple[str, Callable[[str], SweepConfig]]] = {
    "table3": ("Table III: methods x backbones, test AUC, Welch marks", _table3),
    "table4": ("Table IV: PUB, PUB+Clippy, PUB+AdaTask vs MMoE / PLE", _table4),
    "ablations": ("PUB ablations: alpha scale, solve every 1/10/100, alpha = 1", _ablations),
    "table5": ("Table V: seconds per epoch, base vs NashMTL vs PUB", _table5),
    "table1": ("Table I / Sec. III: cos(gradient, update), Diff", _table1),
    "solvers": ("Solver backends vs training outcome", _solvers),
}


def experiment(name: str, size: str = "quick") -> SweepConfig:
    """The :class:`SweepConfig` of a named experiment at a size (quick, standard, full)."""
    if size not in SIZES:
        raise InputError(f"--size: expected one of {', '.join(SIZES)}, got {size!r}")
    key = name.strip().lower().replace("_", "")
    if key not in EXPERIMENTS:
        raise InputError(f"experiment {name!r}: unknown (known: {', '.join(EXPERIMENTS)}, all)")
    return EXPERIMENTS[key][1](size)


def preset(name: str) -> SweepConfig:
    """``quick`` / ``standard`` / ``full`` (Table III) or ``<experiment>-<size>``."""
    n = name.strip().lower()
    if n in SIZES:
        return experiment("table3", n)
    exp, _, size = n.rpartition("-")
    if exp and size in SIZES:
        return experiment(exp, size)
    if n in EXPERIMENTS:
        return experiment(n, "quick")
    known = [*SIZES, *(f"{e}-{s}" for e in EXPERIMENTS for s in SIZES)]
    raise InputError(f"--preset {name!r}: unknown (known: {', '.join(known)})")


def custom_sweep(
    recipes: Sequence[str],
    methods: str | Sequence[str],
    backbones: str | Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1),
    overrides: Sequence[str] = (),
    *,
    name: str = "sweep",
    kind: str = "auc",
    baseline: str | None = None,
    stl: bool = False,
) -> SweepConfig:
    """A :class:`SweepConfig` from command-line style strings.

    ``backbones=None`` uses each recipe's own backbone (the first recipe's, when they differ
    the first one's is used for all). The baseline defaults to ``LS`` when ``ls`` is among the
    methods, else the first method.
    """
    ms = parse_specs(methods)
    if backbones is None:
        from mtopt.config import read_recipe_file

        first = resolve_recipe(recipes[0])
        bname = (read_recipe_file(first).get("model") or {}).get("name", "mmoe")
        bs = [Spec(bname)]
    else:
        bs = parse_specs(backbones)
    labels = [method_label(m) for m in ms]
    if baseline is None:
        baseline = "LS" if "LS" in labels else labels[0]
    elif baseline not in labels:
        try:
            baseline = method_label(Spec.parse(baseline))
        except InputError:
            pass
        if baseline not in labels:
            raise InputError(f"--baseline {baseline!r}: not among the methods ({labels})")
    return SweepConfig(
        name=name,
        recipes=list(recipes),
        backbones=bs,
        methods=ms,
        seeds=[int(s) for s in seeds],
        overrides=list(overrides),
        kind=kind,
        baseline=baseline,
        stl=stl,
    )


def replace_seeds(config: SweepConfig, seeds: Sequence[int]) -> SweepConfig:
    """A copy of ``config`` with other seeds."""
    return replace(config, seeds=[int(s) for s in seeds])
