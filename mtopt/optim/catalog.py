"""Registered built-in components of mtopt.optim (lazy targets; nothing heavy imported here).

A ``umm`` target is a factory ``(**options) -> mtopt.optim.umm.UMM`` used by ``PUB(umm=name)``.
"""

from mtopt.registry import registry

_r = registry.register

_r(
    "umm",
    "clippy",
    "mtopt.optim.umm:ClippyUMM",
    "Clippy: per-tensor bound |lr*update| <= lambda_rel*|w| + lambda_abs (on the joint update).",
    "Tang et al., KDD 2023",
)
_r(
    "umm",
    "adatask",
    "mtopt.optim.umm:AdaTaskUMM",
    "AdaTask: per-task moments for the shared parameters, each fed its own task gradient.",
    "Yang et al., AAAI 2023",
)
