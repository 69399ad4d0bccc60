"""Exception types shared by the library and the CLI.

The CLI maps :class:`InputError` (and subclasses) to exit code 2 with a one-line message, and
:class:`RunError` to exit code 1. Library code raises these typed errors; it never prints.
"""

from __future__ import annotations


class MtoptError(Exception):
    """Base class of every error mtopt raises on purpose."""


class InputError(MtoptError, ValueError):
    """Bad input from the user (file, field, value). The CLI exits with code 2.

    The message should name the file and/or field and say how to fix it, on one line.
    """


class UnknownNameError(InputError, KeyError):
    """A name that is not registered (solver, method, backbone, dataset, umm)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SolverUnavailableError(MtoptError, RuntimeError):
    """A solver backend cannot run here (e.g. the ECOS package is missing)."""


class RunError(MtoptError, RuntimeError):
    """A run on valid input failed (e.g. a NaN loss). The CLI exits with code 1."""
