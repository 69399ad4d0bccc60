"""mtopt: multi-task optimization for multi-task ranking models.

The core algorithm is PUB, Parameter Update Balancing (Yuan, Cai, Dong, "A Parameter Update
Balancing Algorithm for Multi-task Ranking Models in Recommendation Systems", ICDM 2024).

Importing ``mtopt`` is cheap: it imports neither torch nor cvxpy. Heavy modules are loaded on
first use (see :mod:`mtopt.registry`).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
