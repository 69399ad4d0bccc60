"""Common machinery of the registered backbones: input layer, towers, the shared / task split,
the packed shared representation, and the optional ESMM-style probability chain.

The split follows the *gradient* definition (DESIGN §1): a parameter is task-specific for task
``i`` only if no other task's loss depends on it; everything else is shared. A subclass splits
its forward pass into

- :meth:`Backbone.trunk` — everything computed from shared parameters only, returned as a list
  of tensors ("parts"), and
- :meth:`Backbone.head` — task ``i``'s logit computed from the parts with task ``i``'s own
  parameters only (its gates / experts after the last shared point, and its tower),

and declares the matching parameter lists (:meth:`trunk_parameters`, :meth:`head_parameters`).
The forward pass packs the parts into one tensor ``z`` (``self.representation``), and every
task loss depends on the shared parameters only through ``z`` (what MGDA-UB needs: Sener &
Koltun, NeurIPS 2018, §3.3). Outside ESMM the heads read aliases of the parts and their
gradient is routed through ``z`` only once ``representation`` has been read
(:class:`~mtopt.models.layers.Route`): the same bits either way, but a backward pass that
nobody asked ``∂z`` of assembles no full-width ``∂z``; packing then costs one concatenation in
the forward pass. Under ESMM the heads read views of ``z`` (always through ``z``). With
``pack_representation: false`` the parts are not packed and ``self.representation`` is the
*tuple* of part tensors instead (fresh views read only by the heads, so the tuple is the same
cut in pieces:
``torch.autograd.grad(loss, model.representation)`` works on it, and mtopt's MGDA-UB accepts
it; methods that need one tensor, e.g. GradNorm with ``on: representation``, do not).

ESMM (Ma et al., "Entire Space Multi-Task Model", SIGIR 2018, eq. 1–3): with ``esmm: true``
task ``k`` predicts ``p_k = Π_{j≤k} σ(l_j)`` (for two tasks pCTCVR = pCTR × pCVR) and is
trained with BCE on that product, computed in log space. Tower ``j`` then feeds every task
``k ≥ j``, so by the gradient rule the heads of tasks ``0 … n−2`` (CTR tower, and its gates in
MMoE / PLE) are *shared* parameters and only the last task keeps task-specific parameters.
``forward`` still returns the raw per-tower logits ``l``; use :meth:`probabilities` (or
:meth:`probabilities_from_logits`) for predictions.

:meth:`Backbone.losses` (outside ESMM) computes task ``i``'s loss from head ``i``'s logits
rather than from column ``i`` of the stacked ``[B, n]`` output, so task ``i``'s backward pass
visits head ``i`` only (through the stack it visits every head, with zero gradients: O(n²) head
work for n per-task passes). The loss reads, and the head receives its gradient as, a column of
a ``[B, n]`` buffer — the strides of the stacked path — so losses and gradients keep their bits
(tests/models/test_pack_route.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.models.base import MultiTaskModel
from mtopt.models.layers import InputLayer, Route, int_list, pack

_LN2 = math.log(2.0)


def log1mexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 − exp(a))`` for ``a ≤ 0``, stable at both ends (Mächler 2012), finite
    gradients everywhere (both branches are evaluated on safe inputs)."""
    a = a.clamp(max=-1e-30)
    near = a > -_LN2
    one = torch.full_like(a, -1.0)
    b_near = torch.log(-torch.expm1(torch.where(near, a, one)))
    b_far = torch.log1p(-torch.exp(torch.where(near, one, a)))
    return torch.where(near, b_near, b_far)


def esmm_log_probs(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p, log(1 − p))`` of the chained probabilities ``p_k = Π_{j≤k} σ(l_j)``."""
    log_p = torch.cumsum(nn.functional.logsigmoid(logits), dim=1)
    return log_p, log1mexp(log_p)


class _Column(torch.autograd.Function):
    """Task ``i``'s logits ``[B]`` as column ``i`` of a ``[B, n]`` buffer, and the head's
    gradient as column ``i`` of another: the strides the loss and the head see when the loss
    reads a column of the stacked logits. Kernels take other paths for strided operands (e.g.
    scalar rather than vectorised ``exp``), so keeping the strides keeps the bits — while task
    ``i``'s backward pass visits head ``i`` only, not every head with zero gradients."""

    @staticmethod
    def forward(x: torch.Tensor, i: int, n: int) -> torch.Tensor:
        col = x.new_zeros(*x.shape, n).select(-1, i)
        return col.copy_(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.i, ctx.n = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        buf = g.new_zeros(*g.shape, ctx.n)
        col = buf.select(-1, ctx.i)
        col.copy_(g)
        return col, None, None


class Backbone(MultiTaskModel):
    """Base class of the built-in backbones (see the module docstring)."""

    def __init__(
        self,
        schema: Schema,
        *,
        embed_dim: int = 16,
        dense_dim: int | None = None,
        embed_user: bool = True,
        embed_init_std: float = 0.05,
        tower_dims: Sequence[int] = (64,),
        dropout: float = 0.0,
        esmm: bool = False,
        pack_representation: bool = True,
    ) -> None:
        super().__init__()
        self.schema = schema
        self.task_names = list(schema.task_names)
        self.n_tasks = len(self.task_names)
        if self.n_tasks < 1:
            raise InputError("schema: the dataset declares no tasks")
        if not 0.0 <= float(dropout) < 1.0:
            raise InputError(f"model.dropout: expected a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.tower_dims = int_list("tower_dims", tower_dims)
        self.esmm = bool(esmm)
        if self.esmm and self.n_tasks < 2:
            raise InputError("model.esmm: needs at least two tasks (pCTCVR = pCTR x pCVR)")
        self.inputs = InputLayer(schema, embed_dim, dense_dim, embed_user, embed_init_std)
        self.pack_representation = bool(pack_representation)
        self.representation = None

    # ---------------------------------------------------------------- subclass API
    def trunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Shared computation on the input vector ``x`` → list of tensors ``[B, …]``."""
        raise NotImplementedError

    def head(self, i: int, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Task ``i``'s logits ``[B]`` from the trunk parts, using task-``i`` parameters only."""
        raise NotImplementedError

    def trunk_parameters(self) -> list[nn.Parameter]:
        """Parameters of :meth:`trunk` (the input layer is added by the base class)."""
        raise NotImplementedError

    def head_parameters(self, i: int) -> list[nn.Parameter]:
        """Parameters of :meth:`head` ``i`` (tower included)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- contract
    def shared_parameters(self) -> list[nn.Parameter]:
        params = list(self.inputs.parameters()) + list(self.trunk_parameters())
        if self.esmm:
            for i in range(self.n_tasks - 1):
                params += self.head_parameters(i)
        return params

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        if not 0 <= i < self.n_tasks:
            raise IndexError(f"task index {i} out of range for {self.n_tasks} tasks")
        if self.esmm and i < self.n_tasks - 1:
            return []
        return list(self.head_parameters(i))

    def forward(self, batch: dict, *, per_task: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Per-task logits ``[B, n_tasks]`` (raw tower logits also under ESMM); with
        ``per_task`` the list of the n columns ``[B]`` before they are stacked."""
        parts = self.trunk(self.inputs(batch))
        n = self.n_tasks
        if self.esmm:
            early = torch.stack([self.head(i, parts) for i in range(n - 1)], dim=1)
            parts = [*parts, early]
        if self.pack_representation:
            # not under ESMM: there the trunk parts also feed the earlier towers outside ``z``,
            # and the direct route changes the order in which their gradients are summed
            route = None if self.esmm else Route()
            z, parts = pack(parts, route)
            self.representation = z
            self.__dict__["_route"] = route  # reading ``representation`` sets route.via_z
        else:
            # fresh view nodes (no copy): the heads read only these, so ∂L/∂(view) counts the
            # heads' uses and not the trunk's own reuse of a part (e.g. layer-2 experts
            # reading layer-1 experts' output) — the tuple is a proper cut like ``z``
            parts = [p.view_as(p) for p in parts]
            self.representation = tuple(parts)
        if self.esmm:
            logits = [*parts[-1].unbind(1), self.head(n - 1, parts[:-1])]
        else:
            logits = [self.head(i, parts) for i in range(n)]
        return logits if per_task else torch.stack(logits, dim=1)

    def __getstate__(self) -> dict[str, Any]:
        # ``representation`` holds the last forward's graph; drop it so that the model can be
        # deep-copied or pickled after a forward pass
        state = self.__dict__.copy()
        state["_representation"] = None
        state["_route"] = None
        return state

    @property  # type: ignore[override]
    def representation(self) -> torch.Tensor | tuple[torch.Tensor, ...] | None:
        """The last forward's shared representation (module docstring). Reading it routes
        that forward's backward passes through ``z`` (:class:`~mtopt.models.layers.Route`);
        until then they skip the full-width ``∂z`` (bit-identical gradients)."""
        route = self.__dict__.get("_route")
        if route is not None:
            route.via_z = True
        return self.__dict__.get("_representation")

    @representation.setter
    def representation(self, value: torch.Tensor | tuple[torch.Tensor, ...] | None) -> None:
        self.__dict__["_representation"] = value
        self.__dict__["_route"] = None

    def probabilities_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Predicted probabilities from :meth:`forward`'s output (chained under ESMM)."""
        if self.esmm:
            return torch.cumprod(torch.sigmoid(logits), dim=1)
        return torch.sigmoid(logits)

    def probabilities(self, batch: dict) -> torch.Tensor:
        return self.probabilities_from_logits(self(batch))

    def losses(self, batch: dict, logits: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per-task mean BCE; under ESMM task ``k ≥ 1`` is BCE on ``Π_{j≤k} σ(l_j)`` computed
        from ``log p`` and ``log(1 − p)`` (the latter clamped at −100 like ``torch``'s BCE)."""
        if not self.esmm:
            if logits is not None or type(self).forward is not Backbone.forward:
                return super().losses(batch, logits)
            # each loss from its own head's logits, not from a column of the stacked [B, n]:
            # the same values and bits, but task i's backward pass then traverses head i only
            # (through the stack it visits every head, with zero gradients)
            cols = self(batch, per_task=True)
            y = batch["labels"].to(cols[0].dtype)
            n = len(cols)
            return [
                nn.functional.binary_cross_entropy_with_logits(_Column.apply(c, i, n), y[:, i])
                for i, c in enumerate(cols)
            ]
        out = self(batch) if logits is None else logits
        y = batch["labels"].to(out.dtype)
        log_p, log_q = esmm_log_probs(out)
        log_q = log_q.clamp(min=-100.0)
        losses = [nn.functional.binary_cross_entropy_with_logits(out[:, 0], y[:, 0])]
        for k in range(1, self.n_tasks):
            losses.append(-(y[:, k] * log_p[:, k] + (1.0 - y[:, k]) * log_q[:, k]).mean())
        return losses
