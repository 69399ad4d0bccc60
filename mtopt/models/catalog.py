"""Registered built-in components of mtopt.models (lazy targets; nothing heavy imported here)."""

from mtopt.registry import registry

_r = registry.register
