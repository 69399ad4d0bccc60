"""Library errors speak in parameter names; the CLI speaks in flags and recipe fields.

Library code raises ``InputError("jobs: must be ≥ 1, got 0")``. A command that calls it maps
the leading parameter name to its own flag with :func:`as_flags` before printing, so a user of
the Python API reads ``jobs`` and a user of the CLI reads ``--jobs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mtopt.errors import InputError

_LEAD = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?P<rest>(\[[^\]]*\])?:\s)")


def as_flags(exc: InputError, flags: Mapping[str, str]) -> InputError:
    """``exc`` with a leading ``param:`` replaced by ``flags[param]`` (same type, same cause)."""
    text = rewrite_flags(str(exc), flags)
    if text == str(exc):
        return exc
    new = type(exc)(text)
    new.__cause__ = exc.__cause__
    return new


def rewrite_flags(text: str, flags: Mapping[str, str]) -> str:
    """The message ``text`` with a leading ``param:`` replaced by ``flags[param]``."""
    m = _LEAD.match(text)
    if m is None or m.group("name") not in flags:
        return text
    return flags[m.group("name")] + m.group("rest") + text[m.end() :]
