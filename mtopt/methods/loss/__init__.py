"""Loss-level methods: each step minimises a (re)weighted combination of the task losses.

One backward of the method's objective, one step of the base optimiser
(:func:`~mtopt.methods.base.make_torch_optimizer`) on all model parameters plus the method's
own learned parameters (log-variances, loss scales) as an extra parameter group without weight
decay. ``StepInfo.loss`` is ``Σᵢ Lᵢ`` (unweighted, comparable across methods); the objective
actually minimised is ``StepInfo.extra["objective"]``; ``StepInfo.weights`` are the task weights
where the method's paper defines them (the coefficient of ``Lᵢ`` in the objective, or FAMO's
``z``).

Optional hooks: FAMO sets ``needs_closure`` (post-step loss evaluation on the same batch), DWA
with ``window=None`` uses ``end_epoch()``; both are declared, with their defaults, on
:class:`~mtopt.methods.base.Method`.

One method per module: :mod:`~.si`, :mod:`~.rlw`, :mod:`~.dwa`, :mod:`~.uncertainty`,
:mod:`~.imtl_l`, :mod:`~.gradnorm`, :mod:`~.banditmtl`, :mod:`~.famo`; the shared loop is
:class:`~.base.LossWeightingMethod`.
"""

from __future__ import annotations

from mtopt.methods.loss.banditmtl import BanditMTL, bandit_mirror_step, kl_to_uniform
from mtopt.methods.loss.base import LossWeightingMethod
from mtopt.methods.loss.dwa import DWA
from mtopt.methods.loss.famo import FAMO
from mtopt.methods.loss.gradnorm import GradNorm
from mtopt.methods.loss.imtl_l import IMTLL
from mtopt.methods.loss.rlw import RLW
from mtopt.methods.loss.si import SI
from mtopt.methods.loss.uncertainty import Uncertainty

__all__ = [
    "BanditMTL",
    "DWA",
    "FAMO",
    "GradNorm",
    "IMTLL",
    "LossWeightingMethod",
    "RLW",
    "SI",
    "Uncertainty",
    "bandit_mirror_step",
    "kl_to_uniform",
]
