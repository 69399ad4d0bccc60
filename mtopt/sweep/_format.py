"""Number formatting for the Markdown tables and JSON-safe values for the written files."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.sweep.stats import DECIMALS


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


#: public names for the packages built on the sweep's tables (``mtopt.tune``)
format_number = _fmt
markdown_table = _md_table
jsonable = _jsonable
