"""Component specs ``name[key=value,...]`` and their display labels (``PUB``, ``MMoE`` …)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mtopt.errors import InputError

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
    "upgrad": "UPGrad",
    "alignedmtl": "Aligned-MTL",
    "fairgrad": "FairGrad",
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
            if not v.strip():
                raise InputError(
                    f"spec {text!r}: {k.strip()!r} has no value; write {k.strip()}=VALUE "
                    f"(e.g. {k.strip()}=10, or {k.strip()}=null for None)"
                )
            try:
                val = yaml.safe_load(v)
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
