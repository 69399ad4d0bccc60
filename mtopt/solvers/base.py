"""The solver contract: input validation, :class:`SolveResult`, the residual certificate.

Every backend solves PUB's balancing equation (Yuan et al., ICDM 2024, Sec. V-B, Claim 1)::

    G α = 1/α,   α > 0,   G = DᵀD  (n×n, symmetric positive semi-definite)

and is called through :func:`solve`, which validates ``G`` (with *relative* tolerances on the
unit-diagonal ``C = S G S``, ``S = diag(1/√Gᵢᵢ)``), handles inputs that have no solution,
recomputes the residual ``r(α) = maxᵢ |αᵢ (Gα)ᵢ − 1|`` of whatever the backend returns and sets
the status from it. A backend therefore can never return an α without its certificate.

Validation (:mod:`mtopt.solvers.validate`) is cheap on the common path (a Cholesky PSD test,
with the eigenvalue test only as the fallback that decides unclear cases), and ``solve(...,
validate="light")`` defers the PSD check for callers that formed ``G = DᵀD`` themselves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mtopt.errors import InputError
from mtopt.solvers.backends import as_backend
from mtopt.solvers.validate import (  # noqa: F401  (validation names re-exported for callers)
    _EPS,
    MAX_ENTRY,
    PSD_TOL,
    SYM_RTOL,
    ZERO_DIAG,
    InvalidGramError,
    _abs,
    _all,
    _as_matrix,
    _fast_pass,
    _full_checks,
    _isfinite,
    _max,
    _min,
    psd_cholesky,
    unit_diagonal,
    validate_gram,
)

DEFAULT_TOL = 1e-6
STATUSES = ("ok", "not_converged", "pareto_stationary")

#: ``validate=`` modes of :func:`solve`
VALIDATE_MODES = ("full", "light")


@dataclass
class SolveResult:
    """Outcome of one α solve.

    Attributes:
        alpha: the weights (float64, shape (n,)), or ``None`` when there is no solution.
        residual: ``maxᵢ |αᵢ (Gα)ᵢ − 1|`` on the caller's ``G`` (``None`` iff ``alpha`` is None).
        iterations: iterations the backend used.
        seconds: wall time of the solve, excluding one-time compilation.
        status: ``ok`` (residual ≤ tol), ``not_converged`` or ``pareto_stationary``.
        solver: registered name of the backend.
        compile_seconds: one-time set-up (e.g. CVXPY problem compilation) paid by this call.
        info: backend-specific extras (e.g. ``hull_distance``, the squared distance of 0 to the
            convex hull of the unit-normalised columns, a conditioning measure).
    """

    alpha: np.ndarray | None
    residual: float | None
    iterations: int
    seconds: float
    status: str
    solver: str
    compile_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (alpha as a list or None; non-finite numbers as None)."""
        d = asdict(self)
        d["alpha"] = None if self.alpha is None else [float(a) for a in self.alpha]

        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, (np.floating, np.integer)):
                return clean(x.item())
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, np.ndarray):
                return clean(x.tolist())
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            return x

        return {k: clean(v) for k, v in d.items()}


def residual(G: np.ndarray, alpha: np.ndarray) -> float:
    """The certificate ``maxᵢ |αᵢ (Gα)ᵢ − 1|`` (computed in float64)."""
    a = np.asarray(alpha, dtype=np.float64)
    return float(_max(_abs(a * (np.asarray(G, dtype=np.float64) @ a) - 1.0), axis=None))


def residual_floor(G: np.ndarray, alpha: np.ndarray) -> float:
    """Rounding floor of the certificate: ``n·ε·maxᵢ αᵢ (|G| α)ᵢ`` (ε = float64 machine epsilon).

    Near Pareto stationarity α grows and ``Gα`` is a cancelling sum, so even the exact α has a
    computed residual of about this size (DESIGN §2.5); it is reported beside the residual as
    the conditioning of the instance. For well-posed inputs it is ~1e-15."""
    a = np.asarray(alpha, dtype=np.float64)
    n = a.shape[0]
    return float(n * np.finfo(np.float64).eps * np.max(a * (np.abs(G) @ a)))


def _certificate(G: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    """``(residual(G, a), residual_floor(G, a))`` for a float64 ``G`` and ``a`` (one ``G @ a``)."""
    r = float(_max(_abs(a * (G @ a) - 1.0)))
    floor = G.shape[0] * _EPS * float(_max(a * (_abs(G) @ a)))
    return r, floor


def finalize(
    G: np.ndarray,
    alpha: np.ndarray | None,
    *,
    solver: str,
    tol: float,
    iterations: int,
    seconds: float,
    stationary: bool = False,
    compile_seconds: float = 0.0,
    info: dict[str, Any] | None = None,
) -> SolveResult:
    """Build a :class:`SolveResult` with the residual recomputed and the status derived from it.

    ``G`` must be a float64 array (as :func:`validate_gram` returns it). A non-finite or
    non-positive α is never returned: it becomes ``None`` with status ``pareto_stationary``
    (if the backend said so) or ``not_converged``.
    """
    info = dict(info or {})
    if alpha is not None:
        alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
        if (
            alpha.shape != (G.shape[0],)
            or not _all(_isfinite(alpha))
            or not float(_min(alpha)) > 0.0
        ):
            info["rejected_alpha"] = "non-finite, non-positive or wrong-shaped alpha"
            alpha = None
    if alpha is None or stationary:
        status = "pareto_stationary" if stationary else "not_converged"
        res = None if alpha is None else residual(G, alpha)
        return SolveResult(
            None if stationary else alpha,
            None if stationary else res,
            iterations,
            seconds,
            status,
            solver,
            compile_seconds,
            info,
        )
    res, info["residual_floor"] = _certificate(G, alpha)
    status = "ok" if res <= tol else "not_converged"
    return SolveResult(alpha, res, iterations, seconds, status, solver, compile_seconds, info)


def solve(
    G: Any,
    solver: str | Callable[..., SolveResult] = "newton",
    tol: float = DEFAULT_TOL,
    *,
    validate: str = "full",
    **options: Any,
) -> SolveResult:
    """Solve ``G α = 1/α`` with the backend ``solver``.

    ``solver`` is a backend callable (best: a :class:`~mtopt.solvers.backends.Backend` from
    :func:`~mtopt.solvers.backends.get_solver`, resolved once by the caller, so the hot path
    does no name lookup) or a registered name, resolved here on every call.

    ``G`` is validated (:func:`validate_gram`); a zero column returns ``pareto_stationary``
    without calling the backend. Backend exceptions propagate (never swallowed). Unknown
    solver names raise :class:`~mtopt.errors.UnknownNameError`. Whatever the mode, the
    residual certificate is recomputed on ``G`` for every α returned and the status is set
    from it.

    ``validate``:
        ``"full"`` (default): shape, finiteness, symmetry and PSD checks before the solve;
        an invalid ``G`` raises :class:`InvalidGramError`.
        ``"light"``: for callers that formed ``G = DᵀD`` themselves in float64 (PUB does):
        shape, finiteness, non-negative diagonal and symmetry are checked before the solve,
        the PSD check only when the result is not ``ok`` (and then it raises exactly as in
        full mode). So the two modes return the same result, or raise the same error, on
        every input except a ``G`` that fails the PSD check *and* for which the backend
        found an α with residual ≤ ``tol``: light mode returns that certified α (it solves
        the equation for the ``G`` given), full mode raises.
    """
    backend = as_backend(solver)
    name = backend.name
    if not (tol > 0 and math.isfinite(tol)):
        raise InputError(f"tol: must be a positive finite number, got {tol!r}")
    if validate not in VALIDATE_MODES:
        raise InputError(f"validate: must be one of {', '.join(VALIDATE_MODES)}, got {validate!r}")
    full = validate == "full"
    A = _as_matrix(G, "G")
    S = _fast_pass(A, full)  # a positive diagonal when it passes
    if S is None:
        S = _full_checks(A, "G", full)
        d = S.diagonal()
        if not float(_min(d)) >= ZERO_DIAG:
            if not full:
                _full_checks(A, "G", True)  # the deferred PSD check (raises if not PSD)
            return SolveResult(
                None,
                None,
                0,
                0.0,
                "pareto_stationary",
                name,
                info={"reason": "zero update column"},
            )
    t0 = time.perf_counter()
    result: SolveResult = backend.fn(S, tol=tol, **options)
    if not isinstance(result, SolveResult):
        raise TypeError(f"solver {name!r} returned {type(result).__name__}, not SolveResult")
    if not backend.named:  # a bare callable: its result names it
        name = result.solver or name
    if result.seconds <= 0:
        result.seconds = time.perf_counter() - t0 - result.compile_seconds
    # never trust a backend's own certificate: recompute it on the caller's G
    out = finalize(
        S,
        result.alpha,
        solver=name,
        tol=tol,
        iterations=result.iterations,
        seconds=result.seconds,
        stationary=result.status == "pareto_stationary",
        compile_seconds=result.compile_seconds,
        info=result.info,
    )
    if not full and out.status != "ok":
        _full_checks(A, "G", True)  # the deferred PSD check (raises if not PSD)
    return out
