"""``stl``: single-task learning — one independent network per task (the PUB paper's first
row of Table III)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.models.base import MultiTaskModel
from mtopt.models.layers import INPUT_OPTIONS, MLP, InputLayer, Tower, check_options, int_list


class _SingleTaskNet(nn.Module):
    def __init__(self, schema: Schema, bottom_dims: list[int], tower_dims: list[int], **inp: Any):
        super().__init__()
        dropout = inp.pop("dropout")
        self.inputs = InputLayer(schema, **inp)
        self.bottom = MLP(self.inputs.out_dim, bottom_dims, dropout)
        self.tower = Tower(self.bottom.out_dim, tower_dims, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.tower(self.bottom(self.inputs(batch)))


class STL(MultiTaskModel):
    """``n_tasks`` independent shared-bottom-shaped networks (own embeddings, bottom MLP and
    tower each); the single-task baseline of multi-task learning (Caruana, Machine Learning 28,
    1997; first row of Table III in Yuan et al., ICDM 2024).

    Nothing is shared: :meth:`shared_parameters` is empty and ``task_parameters(i)`` is network
    ``i``. ``representation`` is ``None`` (no tensor is read by every task). A method given an
    empty shared set must reduce to independent per-task training: each task's parameters take
    the plain base-optimizer step on its own loss (PUB has no ``D`` to balance and skips the α
    solve; gradient methods have no shared gradient to combine). Options as for
    ``shared-bottom``; ``esmm`` is not available (it would couple the tasks).
    """

    def __init__(
        self,
        schema: Schema,
        *,
        embed_dim: int = 16,
        dense_dim: int | None = None,
        embed_user: bool = True,
        embed_init_std: float = 0.05,
        bottom_dims: Sequence[int] = (256, 128),
        tower_dims: Sequence[int] = (64,),
        dropout: float = 0.0,
        esmm: bool = False,
    ) -> None:
        super().__init__()
        if esmm:
            raise InputError("model.esmm: not available for stl (it would couple the tasks)")
        if not 0.0 <= float(dropout) < 1.0:
            raise InputError(f"model.dropout: expected a number in [0, 1), got {dropout!r}")
        self.schema = schema
        self.task_names = list(schema.task_names)
        self.n_tasks = len(self.task_names)
        bottom = int_list("bottom_dims", bottom_dims)
        towers = int_list("tower_dims", tower_dims)
        self.nets = nn.ModuleList(
            _SingleTaskNet(
                schema,
                bottom,
                towers,
                embed_dim=embed_dim,
                dense_dim=dense_dim,
                embed_user=embed_user,
                embed_init_std=embed_init_std,
                dropout=float(dropout),
            )
            for _ in range(self.n_tasks)
        )
        self.representation = None

    def forward(self, batch: dict) -> torch.Tensor:
        self.representation = None
        return torch.stack([net(batch) for net in self.nets], dim=1)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["representation"] = None
        return state

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        if not 0 <= i < self.n_tasks:
            raise IndexError(f"task index {i} out of range for {self.n_tasks} tasks")
        return list(self.nets[i].parameters())

    def probabilities_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Predicted probabilities from :meth:`forward`'s output."""
        return torch.sigmoid(logits)


def build(schema: Schema, **cfg: Any) -> STL:
    """Registry factory (``model:`` options of a recipe)."""
    check_options(
        "backbone",
        "stl",
        cfg,
        [*INPUT_OPTIONS, "bottom_dims", "tower_dims", "dropout", "esmm"],
    )
    return STL(schema, **cfg)
