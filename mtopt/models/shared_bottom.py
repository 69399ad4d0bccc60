"""``shared-bottom``: one shared MLP over the input, one tower per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.models.backbone import Backbone
from mtopt.models.layers import COMMON_OPTIONS, MLP, Tower, check_options, int_list


class SharedBottom(Backbone):
    """Hard parameter sharing: ``tower_i(MLP_bottom(input))`` (Caruana, "Multitask Learning",
    Machine Learning 28, 1997). Shared: input layer and bottom MLP; task ``i``: tower ``i``.

    Defaults: ``embed_dim=16``, ``bottom_dims=[256, 128]``, ``tower_dims=[64]``.
    """

    def __init__(
        self, schema: Schema, *, bottom_dims: Sequence[int] = (256, 128), **common: Any
    ) -> None:
        super().__init__(schema, **common)
        self.bottom_dims = int_list("bottom_dims", bottom_dims)
        self.bottom = MLP(self.inputs.out_dim, self.bottom_dims, self.dropout)
        self.towers = nn.ModuleList(
            Tower(self.bottom.out_dim, self.tower_dims, self.dropout) for _ in range(self.n_tasks)
        )

    def trunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.bottom(x)]

    def head(self, i: int, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.towers[i](parts[0])

    def trunk_parameters(self) -> list[nn.Parameter]:
        return list(self.bottom.parameters())

    def head_parameters(self, i: int) -> list[nn.Parameter]:
        return list(self.towers[i].parameters())


def build(schema: Schema, **cfg: Any) -> SharedBottom:
    """Registry factory (``model:`` options of a recipe)."""
    check_options("backbone", "shared-bottom", cfg, [*COMMON_OPTIONS, "bottom_dims"])
    return SharedBottom(schema, **cfg)
