"""Deprecated: the solver benchmark moved to :mod:`mtopt.compare` (kept for one release).

``mtopt.solvers`` is numpy-only; the benchmark (matplotlib plots, every registered backend)
lives in its own package. Import from :mod:`mtopt.compare` instead.
"""

from __future__ import annotations

import warnings

from mtopt.compare import *  # noqa: F403
from mtopt.compare import __all__  # noqa: F401
from mtopt.compare.plots import plot  # noqa: F401

warnings.warn(
    "mtopt.solvers.compare moved to mtopt.compare; this alias is kept for one release",
    DeprecationWarning,
    stacklevel=2,
)
