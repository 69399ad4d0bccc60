"""Pure gradient aggregators, usable without a model.

``aggregate(name, grads, **hyperparameters) -> (vector, weights_or_None)`` with ``grads`` a
``Tensor[n, d]`` (row i = task i's gradient). Stochastic aggregators (``pcgrad``'s order,
``graddrop``'s uniform draws, ``rlw``'s weights) take ``generator=torch.Generator``; MGDA's
loss-based normalisations take ``losses=[...]``. One small class per method, each citing its
paper and documenting its output scaling:

=========  ======================================================  ===========================
name       class                                                   output
=========  ======================================================  ===========================
mgda       :class:`~mtopt.methods.aggregators.mgda.MGDA`           Σ wᵢgᵢ, w on the simplex
pcgrad     :class:`~mtopt.methods.aggregators.pcgrad.PCGrad`       Σ g̃ᵢ (reduction="sum")
cagrad     :class:`~mtopt.methods.aggregators.cagrad.CAGrad`       n·d*/(1+c²) (rescale=1)
graddrop   :class:`~mtopt.methods.aggregators.graddrop.GradDrop`   Σ Mᵢ⊙gᵢ
imtl_g     :class:`~mtopt.methods.aggregators.imtl.IMTLG`          Σ αᵢgᵢ, Σα = 1
nashmtl    :class:`~mtopt.methods.aggregators.nashmtl.NashMTL`     Σ αᵢgᵢ, Gα=1/α on G/‖G‖_F,
                                                                   clipped to max_norm=1
rlw        :class:`~mtopt.methods.aggregators.rlw.RLW`             Σ wᵢgᵢ, w on the simplex
upgrad     :class:`~mtopt.methods.aggregators.weighting.UPGrad`    Σ αᵢgᵢ, α ≥ 1/n
aligned..  :class:`~mtopt.methods.aggregators.weighting.AlignedMTL`  Σ αᵢgᵢ, α = B·(1/n)
fairgrad   :class:`~mtopt.methods.aggregators.weighting.FairGrad`  Σ wᵢgᵢ, (Gw)ᵢ = wᵢ^{−1/a}
=========  ======================================================  ===========================

MGDA-UB is not here: it is MGDA applied to gradients on the model's shared representation
(``aggregate("mgda", grads_on_representation)`` gives its weights).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from mtopt.errors import InputError, UnknownNameError
from mtopt.methods.aggregators.base import Aggregator
from mtopt.names import normalize

#: normalised name -> (display name, "module:Class")
_AGGREGATORS: dict[str, tuple[str, str]] = {
    "mgda": ("mgda", "mtopt.methods.aggregators.mgda:MGDA"),
    "pcgrad": ("pcgrad", "mtopt.methods.aggregators.pcgrad:PCGrad"),
    "cagrad": ("cagrad", "mtopt.methods.aggregators.cagrad:CAGrad"),
    "graddrop": ("graddrop", "mtopt.methods.aggregators.graddrop:GradDrop"),
    "imtlg": ("imtl_g", "mtopt.methods.aggregators.imtl:IMTLG"),
    "nashmtl": ("nashmtl", "mtopt.methods.aggregators.nashmtl:NashMTL"),
    "rlw": ("rlw", "mtopt.methods.aggregators.rlw:RLW"),
    "upgrad": ("upgrad", "mtopt.methods.aggregators.weighting:UPGrad"),
    "alignedmtl": ("aligned_mtl", "mtopt.methods.aggregators.weighting:AlignedMTL"),
    "fairgrad": ("fairgrad", "mtopt.methods.aggregators.weighting:FairGrad"),
}


def names() -> list[str]:
    """Names accepted by :func:`aggregate` (matching ignores case, ``-``, ``_`` and spaces)."""
    return sorted(v[0] for v in _AGGREGATORS.values())


def get_aggregator(name: str, **hyperparameters: Any) -> Aggregator:
    """A configured aggregator instance for ``name``."""
    key = normalize(name)
    if key in ("mgdaub",):
        raise InputError(
            "aggregate: MGDA-UB needs the model's shared representation; pass the gradients "
            "on the representation to aggregate('mgda', ...) or use method 'mgda_ub'"
        )
    if key not in _AGGREGATORS:
        raise UnknownNameError(f"unknown aggregator {name!r} (known: {', '.join(names())})")
    module_name, _, attr = _AGGREGATORS[key][1].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    try:
        return cls(**hyperparameters)
    except TypeError as exc:
        raise InputError(f"aggregate({name!r}): bad hyperparameters ({exc})") from None


def aggregate(
    name: str,
    grads: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    losses: Any = None,
    **hyperparameters: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Aggregate the task gradients ``grads`` (``Tensor[n, d]``) with method ``name``.

    Returns ``(vector, weights)``: the update direction ``Tensor[d]`` in the dtype of
    ``grads`` and the float64 task weights where the method's paper defines them (MGDA,
    IMTL-G, Nash-MTL, RLW), else ``None``. See each class for its output scaling.
    """
    agg = get_aggregator(name, **hyperparameters)
    return agg(grads, generator=generator, losses=losses)


__all__ = ["Aggregator", "aggregate", "get_aggregator", "names"]
