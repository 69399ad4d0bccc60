"""Registered built-in methods (lazy targets; nothing heavy imported here).

A method target is a class ``(model, optimizer: OptimizerConfig, **hyperparameters) -> Method``.
"""

from mtopt.registry import registry

_r = registry.register

_r("method", "ls", "mtopt.methods.ls:LS", "Linear scalarization: sum of task losses, one step.")
