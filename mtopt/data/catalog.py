"""Registered built-in components of mtopt.data (lazy targets; nothing heavy imported here)."""

from mtopt.registry import registry

_r = registry.register

_r(
    "dataset",
    "synthetic-ranking",
    "mtopt.data.synthetic:build",
    "Embedded seeded CTR/CTCVR data: knobs for task correlation, rarity, noise, loss ratio.",
)
_r(
    "dataset",
    "aliexpress",
    "mtopt.data.aliexpress.dataset:build",
    "AliExpress per-country CSV (16 categorical, 63 numerical, click, conversion), streamed.",
    "Li et al., CIKM 2020",
)
_r(
    "dataset",
    "census-income",
    "mtopt.data.census:build",
    "UCI Census-Income (KDD): income > 50K and never-married tasks (MMoE paper setup).",
    "Ma et al., KDD 2018",
)
_r(
    "dataset",
    "multi-digits",
    "mtopt.data.digits:build",
    "scikit-learn 8x8 digits side by side: binary left/right digit tasks (embedded).",
)
