"""The α solver benchmark behind ``mtopt compare-solvers`` (moved out of the numpy-only
:mod:`mtopt.solvers`): seeded scenarios (:mod:`~mtopt.compare.scenarios`), runs
(:mod:`~mtopt.compare.runner`), summary and files (:mod:`~mtopt.compare.summary`), plots
(:mod:`~mtopt.compare.plots`, matplotlib, imported only when writing them)."""

from __future__ import annotations

from mtopt.compare.runner import (
    REFERENCE,
    ROW_KEYS,
    Backend,
    CompareConfig,
    CompareRun,
    backends,
    run,
)
from mtopt.compare.scenarios import (
    DEGENERATE,
    SCENARIOS,
    expected_status,
    make_gram,
    make_updates,
)
from mtopt.compare.summary import Summary, format_summary, summarize, write_outputs

__all__ = [
    "DEGENERATE",
    "REFERENCE",
    "ROW_KEYS",
    "SCENARIOS",
    "Backend",
    "CompareConfig",
    "CompareRun",
    "Summary",
    "backends",
    "expected_status",
    "format_summary",
    "make_gram",
    "make_updates",
    "run",
    "summarize",
    "write_outputs",
]
