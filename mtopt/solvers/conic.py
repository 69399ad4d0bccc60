"""The conic solver under the CVXPY backends (``ccp``, ``ccp-raw``): option ``conic``.

``"ecos"`` (default) is the PUB paper's choice and keeps every existing result unchanged;
``"clarabel"`` is cvxpy's own default since ECOS stopped being released (no release since
2024). Both solve the same DPP problems (second-order, exponential and linear cones); the
compiled problems are cached per conic solver (:data:`mtopt.solvers.ccp._CACHE`), since cvxpy
builds a separate solving chain for each.

Tolerances: ECOS ``abstol = reltol = feastol = 1e-9``, ``max_iters = 200``; Clarabel
``tol_gap_abs = tol_gap_rel = tol_feas = 1e-9``, ``max_iter = 200``. ``conic_options``
(``ecos_options`` is its older name, ECOS only) override them with the chosen solver's own
setting names.
"""

from __future__ import annotations

import warnings
from typing import Any

from mtopt.errors import InputError, SolverUnavailableError

__all__ = ["CONICS", "DEFAULTS", "check_conic", "require", "settings", "solve_quiet"]

#: accepted values of the ``conic`` option; the first is the default
CONICS = ("ecos", "clarabel")
#: cvxpy's solver name and pip package per conic solver
_CVXPY = {"ecos": ("ECOS", "ecos"), "clarabel": ("CLARABEL", "clarabel")}
#: default settings per conic solver (tight: the CCP stops on the residual, not on these)
DEFAULTS: dict[str, dict[str, Any]] = {
    "ecos": {"abstol": 1e-9, "reltol": 1e-9, "feastol": 1e-9, "max_iters": 200},
    "clarabel": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 200},
}
_CHECKED: set[str] = set()


def check_conic(conic: Any, name: str) -> str:
    """``conic`` validated (case-insensitive); :class:`InputError` naming it otherwise."""
    value = conic.lower() if isinstance(conic, str) else conic
    if value not in CONICS:
        raise InputError(f"conic: must be one of {', '.join(CONICS)} ({name}), got {conic!r}")
    return value


def require(cp: Any, conic: str) -> None:
    """Raise :class:`SolverUnavailableError` (with the pip command) if cvxpy lacks ``conic``."""
    if conic in _CHECKED:
        return
    solver, package = _CVXPY[conic]
    if solver not in cp.installed_solvers():
        note = ", which cvxpy >= 1.6 no longer installs;" if conic == "ecos" else ";"
        raise SolverUnavailableError(
            f"solver: the ccp solvers with conic={conic!r} need the {solver} solver{note} "
            f"install it with `pip install {package}`, pick another conic "
            f"({', '.join(CONICS)}) or use solver='newton'"
        )
    _CHECKED.add(conic)


def settings(
    conic: str, conic_options: dict[str, Any] | None, ecos_options: dict[str, Any] | None
) -> dict[str, Any]:
    """The solver settings: :data:`DEFAULTS` updated by the caller's overrides."""
    if ecos_options and conic != "ecos":
        raise InputError(
            f"ecos_options: apply to conic='ecos' only, got conic={conic!r}; "
            "pass conic_options with that solver's setting names"
        )
    out = dict(DEFAULTS[conic])
    out.update(ecos_options or {})
    out.update(conic_options or {})
    return out


def solve_quiet(problem: Any, conic: str, options: dict[str, Any], **kwargs: Any) -> list[str]:
    """``problem.solve`` with the chosen conic solver; returns cvxpy's warnings as strings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problem.solve(solver=_CVXPY[conic][0], **kwargs, **options)
    return [str(w.message) for w in caught]
