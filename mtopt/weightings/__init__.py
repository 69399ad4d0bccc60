"""Weightings on the Gramian: ``G (float64, n×n) → α``, one file each (torchjd's split).

A :class:`~mtopt.weightings.base.Weighting` depends on the rows of ``J`` only through
``G = JJᵀ``; the same object weights gradients (the gradient-level methods) and PUB's per-task
updates (``PUB(weighting=...)``). Built-in names are catalog rows of kind ``weighting``
(``mtopt list weightings``), resolved once by :func:`get_weighting`:

===========  =====================================================  ==========================
name         paper                                                  α
===========  =====================================================  ==========================
nash         Navon et al., ICML 2022, eq. 2 (PUB: Claim 1)          Gα = 1/α
mgda         Sener & Koltun, NeurIPS 2018, eq. 3                    min-norm point, simplex
imtl_g       Liu et al., ICLR 2021, eq. 7                           equal projections, Σα = 1
cagrad       Liu et al., NeurIPS 2021, eq. 3 (dual)                 n·d*/(1+c²) coefficients
upgrad       Quinton & Rey 2024, Sec. 3, Prop. 1                    Σ projections on dual cone
aligned_mtl  Senushkin et al., CVPR 2023, Algorithm 1               B·(1/n), κ = 1
fairgrad     Ban & Ji, ICML 2024, Sec. 4                            Gw = w^{−1/a}
===========  =====================================================  ==========================

Numpy (and SciPy) only, like :mod:`mtopt.solvers`.
"""

from __future__ import annotations

from typing import Any

from mtopt import catalog
from mtopt.errors import InputError, UnknownNameError
from mtopt.weightings.base import Weighting, WeightingResult, check_gram


def names() -> list[str]:
    """The built-in weighting names."""
    return [r.name for r in catalog.rows("weighting")]


def get_weighting(weighting: Any, **options: Any) -> Weighting:
    """A :class:`Weighting` from a built-in name (resolved against the catalog, once) and its
    options, or an instance passed through (options refused then)."""
    if isinstance(weighting, Weighting):
        if options:
            raise InputError("weighting_options: only with a weighting given by name")
        return weighting
    if not isinstance(weighting, str):
        raise InputError(f"weighting: expected a name or a Weighting, got {weighting!r}")
    row = catalog.builtin("weighting", weighting)
    if row is None:
        raise UnknownNameError(f"weighting: unknown {weighting!r} (known: {', '.join(names())})")
    cls = catalog.load(row.target)
    try:
        return cls(**options)
    except TypeError as exc:
        raise InputError(f"weighting_options: bad options for {row.name!r} ({exc})") from None


__all__ = ["Weighting", "WeightingResult", "check_gram", "get_weighting", "names"]
