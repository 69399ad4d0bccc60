"""Registered built-in components of mtopt.optim (lazy targets; nothing heavy imported here)."""

from mtopt.registry import registry

_r = registry.register
