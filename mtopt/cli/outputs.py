"""The ``--out`` folder of the commands that write results (``compare-solvers``, ``toy``):
checked completely before anything runs or is written, so that a previous result is never
replaced without ``--overwrite`` and a long run never fails at its very end on an unwritable
path."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mtopt.errors import InputError


def check_out_dir(out: str | os.PathLike, files: Sequence[str], overwrite: bool) -> Path:
    """``out`` as a Path after checking that the command may write ``files`` into it.

    Raises :class:`InputError` (``--out: ...``) when ``out`` is an existing file, when one of
    ``files`` is already there and ``overwrite`` is False, or when neither the folder nor its
    nearest existing parent is writable. Creates nothing.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out: {out} exists and is not a folder; give a folder path")
    if path.is_dir():
        present = [f for f in files if (path / f).exists()]
        if present and not overwrite:
            raise InputError(
                f"--out: {out} already holds results ({', '.join(present)}); pass --overwrite "
                "to replace them, or choose another --out"
            )
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"--out: {probe} is a file, so {out} cannot be created; choose another")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"--out: {probe} is not writable; choose another --out")
    return path


def check_out_file(out: str | os.PathLike, option: str = "--out") -> Path:
    """``out`` as a Path after checking that a file can be written there (not a folder, its
    folder not blocked by a file). Creates nothing; OS errors while writing stay exit 1."""
    path = Path(out)
    if path.is_dir():
        raise InputError(f"{option}: {out} is a folder; give a file path, e.g. {out}/result.json")
    probe = path.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(f"{option}: {probe} is a file, so {out} cannot be created; choose another")
    return path
