"""Deprecated alias of :mod:`mtopt.methods.grad` (kept for one release).

``mtopt.methods.gradient`` was split into one module per method under :mod:`mtopt.methods.grad`
(the registry's catalog already points there). This module is a thin compatibility shim:
``import mtopt.methods.gradient`` does not warn, but reading any of its names
(``from mtopt.methods.gradient import X``) emits a :class:`DeprecationWarning` naming the new
location and returns the same object. Nothing inside :mod:`mtopt` may import it; it will be
removed in the next release.
"""

from __future__ import annotations

from mtopt.deprecation import moved

#: name -> module under mtopt.methods.grad that now defines it
_MOVED: dict[str, str] = {
    "GradientMethod": "mtopt.methods.grad.base",
    "MGDA": "mtopt.methods.grad.mgda",
    "MGDAUB": "mtopt.methods.grad.mgda",
    "PCGrad": "mtopt.methods.grad.pcgrad",
    "CAGrad": "mtopt.methods.grad.cagrad",
    "GradDrop": "mtopt.methods.grad.graddrop",
    "IMTL": "mtopt.methods.grad.imtl",
    "IMTLG": "mtopt.methods.grad.imtl",
    "NashMTL": "mtopt.methods.grad.nashmtl",
}


__getattr__, __dir__ = moved(__name__, _MOVED)
