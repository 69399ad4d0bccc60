"""Built-in components are declared in one small catalog module per area, each registering
lazy ``"module:attr"`` targets (nothing heavy is imported here). Third-party components register
the same way through the ``mtopt.plugins`` entry points."""

from __future__ import annotations

from mtopt.data import catalog as _data  # noqa: F401
from mtopt.methods import catalog as _methods  # noqa: F401
from mtopt.models import catalog as _models  # noqa: F401
from mtopt.optim import catalog as _optim  # noqa: F401
from mtopt.solvers import catalog as _solvers  # noqa: F401
