"""Registered built-in components of mtopt.models (lazy targets; nothing heavy imported here)."""

from mtopt.registry import registry

_r = registry.register

_r(
    "backbone",
    "shared-bottom",
    "mtopt.models.shared_bottom:build",
    "Shared-bottom: one shared MLP over field embeddings + dense input, one tower per task.",
    "Caruana, Machine Learning 1997",
)
_r(
    "backbone",
    "mmoe",
    "mtopt.models.mmoe:build",
    "MMoE: 2 layers x 8 single-layer shared experts, per-task softmax gates (PUB VI-A2).",
    "Ma et al., KDD 2018",
)
_r(
    "backbone",
    "ple",
    "mtopt.models.ple:build",
    "PLE: 2 extraction layers, 8 shared + 8 task-specific experts per task, per-task gates.",
    "Tang et al., RecSys 2020",
)
_r(
    "backbone",
    "stl",
    "mtopt.models.stl:build",
    "Single-task learning: one independent network per task (no shared parameters).",
)

_r(
    "backbone",
    "drgrad",
    "mtopt.models.drgrad:build",
    "DRGrad's split-tower Split-MMoE (T1' on v1, T1'' + aux towers on vs) with PPNet user gate.",
    "Liu, Miao & Xia, AAAI 2025",
)
