"""Planning a sweep: each run's validated recipe, run key and folder (:func:`plan`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtopt.errors import InputError
from mtopt.registry import registry
from mtopt.sweep.config import OBSERVE, SweepConfig
from mtopt.sweep.spec import Spec, backbone_label, method_label

#: bump when the meaning of a run key changes (invalidates every cached run)
KEY_VERSION = 1


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


def _run_name(run: PlannedRun) -> str:
    return f"{run.recipe_label} {run.backbone}+{run.method} s{run.seed}"


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

        root = Path(__file__).resolve().parents[2]
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
    here = Path(__file__).resolve().parents[2] / "recipes"
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
    """Whether a registered method records PUB's own diagnostics: the catalog capability
    ``pub_diagnostics`` (a plugin declares it: ``registry.register(..., pub_diagnostics=True)``).
    Its ``diagnostics=True`` gives the gradient/update cosines, so a ``diagnostics`` sweep
    switches it on."""
    return bool(registry.entry("method", method_name).meta.get("pub_diagnostics", False))


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
    from mtopt.train.components import check_components

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
    check_components(rec, str(path))
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
