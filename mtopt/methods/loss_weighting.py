"""Deprecated alias of :mod:`mtopt.methods.loss` (kept for one release).

``mtopt.methods.loss_weighting`` was split into one module per method under
:mod:`mtopt.methods.loss` (the registry's catalog already points there). This module is a
thin compatibility shim: ``import mtopt.methods.loss_weighting`` does not warn, but reading
any of its names (``from mtopt.methods.loss_weighting import X``) emits a
:class:`DeprecationWarning` naming the new location and returns the same object. Nothing
inside :mod:`mtopt` may import it; it will be removed in the next release.
"""

from __future__ import annotations

from mtopt.deprecation import moved

#: name -> module under mtopt.methods.loss that now defines it
_MOVED: dict[str, str] = {
    "LossWeightingMethod": "mtopt.methods.loss.base",
    "SI": "mtopt.methods.loss.si",
    "RLW": "mtopt.methods.loss.rlw",
    "DWA": "mtopt.methods.loss.dwa",
    "Uncertainty": "mtopt.methods.loss.uncertainty",
    "IMTLL": "mtopt.methods.loss.imtl_l",
    "GradNorm": "mtopt.methods.loss.gradnorm",
    "BanditMTL": "mtopt.methods.loss.banditmtl",
    "bandit_mirror_step": "mtopt.methods.loss.banditmtl",
    "kl_to_uniform": "mtopt.methods.loss.banditmtl",
    "FAMO": "mtopt.methods.loss.famo",
}


__getattr__, __dir__ = moved(__name__, _MOVED)
