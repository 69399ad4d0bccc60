"""Gradient-level methods: aggregate the per-task gradients on the shared parameters.

Every method here follows one loop (:class:`~.base.GradientMethod`), per step:

1. per-task gradients ``gᵢ = ∇_shared Lᵢ`` (one ``torch.autograd.grad`` per task, with
   ``retain_graph``), stacked as ``J = [g₁ … gₙ]ᵀ``; the Gram ``G = JJᵀ`` is formed once in
   float64 by the aggregator (:mod:`mtopt.methods.aggregators`);
2. the aggregator turns ``J`` into one direction ``d`` written to ``.grad`` of the shared
   parameters;
3. task-specific parameters get the gradient of ``Σᵢ Lᵢ`` (DESIGN §1: "task-specific params:
   plain base-optimizer step, always");
4. optional gradient clipping (``max_norm``, on the shared parameters, as in the authors' code
   of Nash-MTL / FAMO), then one step of the base optimizer (``make_torch_optimizer``) on all
   parameters.

``StepInfo.loss`` is ``Σᵢ Lᵢ`` (unweighted); ``StepInfo.weights`` are the task weights where the
method's paper defines them (MGDA, MGDA-UB, IMTL-G, IMTL, Nash-MTL), i.e. coefficients ``wᵢ``
with ``d = Σ wᵢ ∇Lᵢ``. Stochastic methods (PCGrad, GradDrop) draw from their own
``torch.Generator`` seeded by the ``seed`` hyperparameter and saved in ``state_dict``.

One method (or family) per module: :mod:`~.mgda` (MGDA, MGDA-UB), :mod:`~.pcgrad`,
:mod:`~.cagrad`, :mod:`~.graddrop`, :mod:`~.imtl` (IMTL-G, hybrid IMTL), :mod:`~.nashmtl`,
:mod:`~.upgrad` (UPGrad, Aligned-MTL, FairGrad: a :mod:`mtopt.weightings` weighting each).
"""

from __future__ import annotations

from mtopt.methods.grad.base import GradientMethod
from mtopt.methods.grad.cagrad import CAGrad
from mtopt.methods.grad.graddrop import GradDrop
from mtopt.methods.grad.imtl import IMTL, IMTLG
from mtopt.methods.grad.mgda import MGDA, MGDAUB
from mtopt.methods.grad.nashmtl import NashMTL
from mtopt.methods.grad.pcgrad import PCGrad
from mtopt.methods.grad.upgrad import AlignedMTL, FairGrad, UPGrad

__all__ = [
    "AlignedMTL",
    "CAGrad",
    "FairGrad",
    "GradDrop",
    "GradientMethod",
    "IMTL",
    "IMTLG",
    "MGDA",
    "MGDAUB",
    "NashMTL",
    "PCGrad",
    "UPGrad",
]
