"""``ple`` (and the machinery of ``mmoe``): stacked expert layers with per-task gates.

One extraction network covers both backbones. Layer ``l`` has ``n_shared`` shared experts and,
for PLE, ``n_specific`` experts per task (all single-layer perceptrons of width
``expert_dim``), a softmax gate per task over ``[own experts, shared experts]`` and — on every
layer but the last — a shared gate over all experts that feeds the next layer's shared experts
(Tang et al., "Progressive Layered Extraction (PLE)", RecSys 2020, §4.2–4.3). With
``n_specific = 0`` this is the multi-level MMoE of :mod:`mtopt.models.mmoe`.

Shared / task-specific split by the gradient rule (a parameter is task-specific only if no other
task's loss depends on it), for ``L`` layers:

- shared: the input layer, every shared expert, every shared gate, and the task-``i`` experts of
  layers ``< L−1`` (they feed the shared gate, hence every task);
- task ``i``: its experts of the last layer, its tower, and its gates of layers ``≥ s`` with
  ``s = max(L−2, 0)`` for PLE (a task gate of layer ``l < L−2`` feeds task experts of layer
  ``l+1``, which feed the shared gate) and ``s = 0`` for MMoE (task gates never reach the
  shared path).

So with the defaults (L = 2) PLE's layer-1 task experts are *shared* and its layer-1 task gates
are task-specific; MMoE's per-task gates of both layers are task-specific.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mtopt.data.base import Schema
from mtopt.errors import InputError
from mtopt.models.backbone import Backbone
from mtopt.models.layers import (
    COMMON_OPTIONS,
    ExpertGroup,
    Gate,
    Tower,
    check_options,
    int_list,
    mix,
    positive_int,
)


class ExtractionNetwork(Backbone):
    """Stacked expert layers with per-task gates (PLE; MMoE when ``n_specific = 0``).

    Tang, Liu, Zhao & Gong, "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning
    (MTL) Model for Personalized Recommendations", RecSys 2020, §4.2 (customized gate
    control) and §4.3 (progressive extraction); see the module docstring for the split.
    """

    def __init__(
        self,
        schema: Schema,
        *,
        n_layers: int = 2,
        n_shared: int = 8,
        n_specific: int = 8,
        expert_dim: int | Sequence[int] = 128,
        **common: Any,
    ) -> None:
        super().__init__(schema, **common)
        self.n_layers = L = positive_int("n_layers", n_layers)
        self.n_shared = positive_int("n_shared", n_shared)
        self.n_specific = Kt = positive_int("n_specific", n_specific, minimum=0)
        dims = int_list("expert_dim", expert_dim, allow_empty=False)
        if len(dims) == 1:
            dims = dims * L
        if len(dims) != L:
            raise InputError(
                f"model.expert_dim: one width or one per layer ({L}), got {len(dims)} widths"
            )
        self.expert_dims = dims
        n = self.n_tasks
        self.start = 0 if Kt == 0 else max(L - 2, 0)
        in_dims = [self.inputs.out_dim, *dims[:-1]]
        drop = self.dropout
        self.shared_experts = nn.ModuleList(
            ExpertGroup(in_dims[l], self.n_shared, dims[l], drop) for l in range(L)
        )
        self.shared_gates = nn.ModuleList(
            Gate(in_dims[l], self.n_shared + n * Kt) for l in range(L - 1)
        )
        self.task_experts = nn.ModuleList(
            nn.ModuleList(ExpertGroup(in_dims[l], Kt, dims[l], drop) for _ in range(n if Kt else 0))
            for l in range(L)
        )
        self.task_gates = nn.ModuleList(
            nn.ModuleList(Gate(in_dims[l], Kt + self.n_shared) for _ in range(n)) for l in range(L)
        )
        self.towers = nn.ModuleList(Tower(dims[-1], self.tower_dims, drop) for _ in range(n))

    def trunk(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Parts: task inputs at layer ``start``, then per layer ``l ≥ start`` the (shared)
        task-expert outputs if ``l < L−1`` and the shared-expert output."""
        L, n, Kt = self.n_layers, self.n_tasks, self.n_specific
        x_s = x
        x_t = [x] * n
        for l in range(self.start):  # fully shared layers (PLE with L >= 3)
            es = self.shared_experts[l](x_s)
            et = [self.task_experts[l][i](x_t[i]) for i in range(n)]
            x_t = [mix(self.task_gates[l][i](x_t[i]), et[i], es) for i in range(n)]
            x_s = mix(self.shared_gates[l](x_s), *et, es)
        parts = [x_t[0] if self.start == 0 else torch.stack(x_t, dim=1)]
        for l in range(self.start, L):
            es = self.shared_experts[l](x_s)
            if l < L - 1:
                et = [self.task_experts[l][i](x_t[i]) for i in range(n)] if Kt else []
                parts.extend(et)
                x_s = mix(self.shared_gates[l](x_s), *et, es)
            parts.append(es)
        return parts

    def head(self, i: int, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        L, n, Kt = self.n_layers, self.n_tasks, self.n_specific
        x = parts[0] if self.start == 0 else parts[0][:, i]
        idx = 1
        for l in range(self.start, L):
            groups = []
            if Kt and l < L - 1:
                groups.append(parts[idx + i])
                idx += n
            elif Kt:
                groups.append(self.task_experts[l][i](x))
            groups.append(parts[idx])
            idx += 1
            x = mix(self.task_gates[l][i](x), *groups)
        return self.towers[i](x)

    def trunk_parameters(self) -> list[nn.Parameter]:
        params = list(self.shared_experts.parameters()) + list(self.shared_gates.parameters())
        for l in range(self.n_layers - 1):
            params += list(self.task_experts[l].parameters())
        for l in range(self.start):
            params += list(self.task_gates[l].parameters())
        return params

    def head_parameters(self, i: int) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for l in range(self.start, self.n_layers):
            params += list(self.task_gates[l][i].parameters())
        if self.n_specific:
            params += list(self.task_experts[self.n_layers - 1][i].parameters())
        return params + list(self.towers[i].parameters())


class PLE(ExtractionNetwork):
    """PLE backbone. Defaults follow the PUB paper §VI-A2 (Yuan et al., ICDM 2024): 2
    extraction layers, 8 shared + 8 task-specific single-layer experts per task per layer.
    Note: the paper's §VI-A3 says 4 shared + 4 task-specific for PLE; set ``n_shared: 4,
    n_specific: 4`` for that reading. Other defaults: ``expert_dim=128``, ``embed_dim=16``,
    ``tower_dims=[64]``."""


def build(schema: Schema, **cfg: Any) -> PLE:
    """Registry factory (``model:`` options of a recipe)."""
    check_options(
        "backbone",
        "ple",
        cfg,
        [*COMMON_OPTIONS, "n_layers", "n_shared", "n_specific", "expert_dim"],
    )
    cfg.setdefault("n_specific", 8)
    if cfg["n_specific"] == 0:
        raise InputError("model.n_specific: PLE needs >= 1 task-specific expert (use mmoe)")
    return PLE(schema, **cfg)
