"""Arguments the run-many commands share (``mtopt sweep``, ``reproduce``, ``tune``): seeds as a
count or a list, component specs checked against their flag, library errors in flag names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from mtopt.cli.flags import as_flags
from mtopt.errors import InputError


@contextmanager
def _flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Re-raise the library's ``InputError("jobs: …")`` as the command's ``--jobs: …``."""
    try:
        yield
    except InputError as exc:
        raise as_flags(exc, flags) from exc.__cause__


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise InputError(
            f"--seeds {text!r}: give a count (3 → seeds 0,1,2) or a list (0,4,7)"
        ) from None
    if len(nums) == 1 and "," not in text:
        if nums[0] < 1:
            raise InputError(f"--seeds {text!r}: a count must be >= 1")
        return list(range(nums[0]))
    return nums


def _check_specs(text: str, flag: str) -> None:
    """Parse ``--methods`` / ``--backbones`` first, so a malformed spec names its flag."""
    from mtopt.sweep.spec import parse_specs

    try:
        parse_specs(text)
    except InputError as exc:
        raise InputError(f"{flag}: {exc}") from None
