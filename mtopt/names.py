"""Name keys: how component names are matched (a pure function, no mtopt imports)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-_\s]")


def normalize(name: str) -> str:
    """Canonical lookup key: lower case, without ``-``, ``_`` and spaces.

    ``IMTL-G``, ``imtlg`` and ``imtl_g`` all give ``imtlg``.
    """
    return _SEPARATORS.sub("", str(name)).lower()
