"""``mmoe``: multi-gate mixture-of-experts, stacked into layers."""

from __future__ import annotations

from typing import Any

from mtopt.data.base import Schema
from mtopt.models.layers import COMMON_OPTIONS, check_options, positive_int
from mtopt.models.ple import ExtractionNetwork


class MMoE(ExtractionNetwork):
    """MMoE (Ma, Zhao, Yi, Chen, Hong & Chi, "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts", KDD 2018, §4.3: per-task softmax gates over
    shared experts), stacked as in the PUB paper §VI-A2 (Yuan et al., ICDM 2024): 2 MoE layers
    of 8 single-layer experts each.

    Stacking: layer ``l``'s experts read the previous layer's *shared-gate* mixture; task ``i``'s
    gate of layer ``l`` reads task ``i``'s previous mixture (PLE's routing with no
    task-specific experts). With ``n_layers: 1`` this is the original single-layer MMoE.
    Shared: input layer, all experts, the shared gates; task ``i``: its gates of every layer
    and its tower (its gates never reach another task). Defaults: ``n_layers=2``,
    ``n_experts=8``, ``expert_dim=128``, ``embed_dim=16``, ``tower_dims=[64]``. For ~1e6 shared
    parameters with 16 embedded fields (+ dense) use e.g. ``expert_dim: 256`` (≈1.09e6 in the
    expert layers plus the embedding tables).
    """

    def __init__(self, schema: Schema, *, n_experts: int = 8, **cfg: Any) -> None:
        n_experts = positive_int("n_experts", n_experts)
        super().__init__(schema, n_shared=n_experts, n_specific=0, **cfg)


def build(schema: Schema, **cfg: Any) -> MMoE:
    """Registry factory (``model:`` options of a recipe)."""
    check_options("backbone", "mmoe", cfg, [*COMMON_OPTIONS, "n_layers", "n_experts", "expert_dim"])
    return MMoE(schema, **cfg)
