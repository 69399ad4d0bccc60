"""MGDA and MGDA-UB: the min-norm point of the convex hull of the task gradients.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, eq. 3
(MGDA) and Sec. 3.3, eq. 6 (MGDA-UB). The solver is :mod:`mtopt.methods.aggregators.mgda`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mtopt.errors import InputError
from mtopt.methods.base import OptimizerConfig, StepInfo
from mtopt.methods.checks import check_losses
from mtopt.methods.grad.base import GradientMethod
from mtopt.methods.params import flat, set_grads
from mtopt.models.base import MultiTaskModel


class MGDA(GradientMethod):
    """MGDA (Sener & Koltun, NeurIPS 2018, eq. 3): min-norm point of the gradients' hull.

    Hyperparameters: ``normalization`` (``none`` default | ``l2`` | ``loss`` | ``loss+``),
    ``solver`` (``exact`` default | ``frank_wolfe``), ``max_norm`` (0), ``seed``. Weights on
    the simplex. See :mod:`mtopt.methods.aggregators.mgda`.
    """

    aggregator_name = "mgda"
    has_weights = True

    def __init__(
        self,
        model: MultiTaskModel,
        optimizer: OptimizerConfig,
        normalization: str = "none",
        solver: str = "exact",
        max_norm: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(
            model,
            optimizer,
            max_norm=max_norm,
            seed=seed,
            normalization=normalization,
            solver=solver,
        )


class MGDAUB(MGDA):
    """MGDA-UB (Sener & Koltun, NeurIPS 2018, Sec. 3.3, eq. 6): MGDA on the representation.

    The weights solve MGDA's min-norm problem on the gradients of the task losses with respect
    to the shared representation ``Z = model.representation`` (set by the backbone's forward;
    the whole batch, flattened), an upper bound that needs one backward per task through the
    towers only. The shared parameters then get ``∇ Σ wᵢLᵢ`` (one backward), the task-specific
    ones ``∇ Σ Lᵢ``. Hyperparameters as :class:`MGDA`.
    """

    def _representation(self) -> list[torch.Tensor]:
        rep = getattr(self.model, "representation", None)
        reps = [rep] if isinstance(rep, torch.Tensor) else list(rep or [])
        if not reps or not all(isinstance(r, torch.Tensor) and r.requires_grad for r in reps):
            raise InputError(
                f"method mgda-ub: backbone {type(self.model).__name__} does not set "
                "model.representation (a tensor in the autograd graph) during forward; "
                "use method 'mgda' instead"
            )
        return reps

    def step(self, losses: Sequence[torch.Tensor]) -> StepInfo:
        ls = check_losses(losses, self.n_tasks)
        reps = self._representation()
        self.opt.zero_grad(set_to_none=True)
        rows = []
        for loss in ls:
            gs = torch.autograd.grad(loss, reps, retain_graph=True, allow_unused=True)
            rows.append(flat(gs, reps))
        Jz = torch.stack(rows)
        _, w = self.aggregator(Jz, losses=[float(x.detach()) for x in ls])
        assert w is not None
        wl = [float(x) for x in w]
        weighted = sum(wi * li for wi, li in zip(wl, ls))
        gs = torch.autograd.grad(weighted, self.shared, retain_graph=True, allow_unused=True)
        set_grads(self.shared, gs)
        if self.others:
            go = torch.autograd.grad(sum(ls), self.others, allow_unused=True)
            set_grads(self.others, go)
        return self._finish(ls, wl)


__all__ = ["MGDA", "MGDAUB"]
