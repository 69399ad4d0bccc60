"""The solver contract: input validation, :class:`SolveResult`, the residual certificate.

Every backend solves PUB's balancing equation (Yuan et al., ICDM 2024, Sec. V-B, Claim 1)::

    G α = 1/α,   α > 0,   G = DᵀD  (n×n, symmetric positive semi-definite)

and is called through :func:`solve`, which validates ``G`` (with *relative* tolerances on the
unit-diagonal ``C = S G S``, ``S = diag(1/√Gᵢᵢ)``), handles inputs that have no solution,
recomputes the residual ``r(α) = maxᵢ |αᵢ (Gα)ᵢ − 1|`` of whatever the backend returns and sets
the status from it. A backend therefore can never return an α without its certificate.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mtopt.errors import InputError

DEFAULT_TOL = 1e-6
STATUSES = ("ok", "not_converged", "pareto_stationary")

#: relative tolerance of the symmetry check on C = SGS
SYM_RTOL = 1e-9
#: smallest eigenvalue allowed for C = SGS (unit diagonal) before G counts as not PSD
PSD_TOL = 1e-8
#: a column whose squared norm is below this fraction of the largest is treated as zero
ZERO_DIAG_RTOL = 1e-32


class InvalidGramError(InputError):
    """``G`` is not a valid Gram matrix (shape, finiteness, symmetry or PSD)."""


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
    return float(np.max(np.abs(a * (np.asarray(G, dtype=np.float64) @ a) - 1.0)))


def residual_floor(G: np.ndarray, alpha: np.ndarray) -> float:
    """Rounding floor of the certificate: ``n·ε·maxᵢ αᵢ (|G| α)ᵢ`` (ε = float64 machine epsilon).

    Near Pareto stationarity α grows and ``Gα`` is a cancelling sum, so even the exact α has a
    computed residual of about this size (DESIGN §2.5); it is reported beside the residual as
    the conditioning of the instance. For well-posed inputs it is ~1e-15."""
    a = np.asarray(alpha, dtype=np.float64)
    n = a.shape[0]
    return float(n * np.finfo(np.float64).eps * np.max(a * (np.abs(G) @ a)))


def unit_diagonal(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, s)`` with ``C = diag(s) G diag(s)``, ``s = 1/√diag(G)`` (requires diag(G) > 0).

    By the scaling law (DESIGN §2.2) ``α(G) = s ⊙ w(C)``."""
    s = 1.0 / np.sqrt(np.diag(G))
    C = G * s[:, None] * s[None, :]
    np.fill_diagonal(C, 1.0)
    return C, s


def validate_gram(G: Any, name: str = "G") -> np.ndarray:
    """Check ``G`` and return it as a symmetric float64 array.

    Raises :class:`InvalidGramError` (an :class:`~mtopt.errors.InputError`) when ``G`` is not
    2-D square, empty, not finite, not symmetric or not PSD. Symmetry and PSD are judged with
    relative tolerances on the unit-diagonal ``C = SGS`` so that column norms of 1e-4…1e4 are
    legitimate; zero columns are allowed here (they make the point Pareto-stationary).
    """
    try:
        A = np.array(G, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidGramError(f"{name}: not a numeric matrix ({exc})") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InvalidGramError(f"{name}: must be a square n×n matrix, got shape {A.shape}")
    if A.shape[0] == 0:
        raise InvalidGramError(f"{name}: is empty; give at least one task")
    if not np.all(np.isfinite(A)):
        raise InvalidGramError(f"{name}: contains NaN or Inf; remove non-finite entries")
    d = np.diag(A)
    if np.any(d < 0):
        raise InvalidGramError(
            f"{name}: negative diagonal entry {d.min():.3g}; a Gram matrix DᵀD is PSD"
        )
    scale = np.sqrt(np.outer(d, d))
    big = max(float(d.max()), np.finfo(np.float64).tiny)
    asym = np.abs(A - A.T)
    if np.any(asym > SYM_RTOL * scale + 1e-300) and np.any(asym > SYM_RTOL * big):
        i, j = np.unravel_index(np.argmax(asym - SYM_RTOL * scale), A.shape)
        raise InvalidGramError(
            f"{name}: not symmetric (G[{i},{j}]={A[i, j]:.6g} vs G[{j},{i}]={A[j, i]:.6g}); "
            "pass G = DᵀD or symmetrise it"
        )
    A = 0.5 * (A + A.T)
    pos = d > ZERO_DIAG_RTOL * big
    if np.any(~pos):
        # a zero column must have a zero row too (|Gij| ≤ √(Gii Gjj))
        off = np.abs(A[~pos][:, pos])
        lim = np.sqrt(np.outer(d[~pos], d[pos])) + SYM_RTOL * big
        if np.any(off > lim * (1 + 1e-6)):
            raise InvalidGramError(f"{name}: not positive semi-definite (|Gij| > √(Gii·Gjj))")
    if np.count_nonzero(pos):
        C, _ = unit_diagonal(A[np.ix_(pos, pos)])
        lam = float(np.linalg.eigvalsh(C).min())
        if lam < -PSD_TOL * max(1, C.shape[0]):
            raise InvalidGramError(
                f"{name}: not positive semi-definite (smallest eigenvalue of the unit-diagonal "
                f"G is {lam:.3g}); pass G = DᵀD computed in float64"
            )
    return A


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

    A non-finite or non-positive α is never returned: it becomes ``None`` with status
    ``pareto_stationary`` (if the backend said so) or ``not_converged``.
    """
    info = dict(info or {})
    if alpha is not None:
        alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
        if alpha.shape != (G.shape[0],) or not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
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
    res = residual(G, alpha)
    info["residual_floor"] = residual_floor(G, alpha)
    status = "ok" if res <= tol else "not_converged"
    return SolveResult(alpha, res, iterations, seconds, status, solver, compile_seconds, info)


def solve(G: Any, solver: str = "newton", tol: float = DEFAULT_TOL, **options: Any) -> SolveResult:
    """Solve ``G α = 1/α`` with the registered backend ``solver``.

    ``G`` is validated (:func:`validate_gram`); a zero column returns ``pareto_stationary``
    without calling the backend. Backend exceptions propagate (never swallowed). Unknown
    solver names raise :class:`~mtopt.errors.UnknownNameError`.
    """
    from mtopt.registry import registry

    entry = registry.entry("solver", solver)
    if not (tol > 0 and math.isfinite(tol)):
        raise InputError(f"tol: must be a positive finite number, got {tol!r}")
    A = validate_gram(G)
    fn = entry.load()
    d = np.diag(A)
    if np.any(d <= ZERO_DIAG_RTOL * max(float(d.max()), np.finfo(np.float64).tiny)):
        return SolveResult(
            None,
            None,
            0,
            0.0,
            "pareto_stationary",
            entry.name,
            info={"reason": "zero update column"},
        )
    t0 = time.perf_counter()
    result: SolveResult = fn(A, tol=tol, **options)
    if not isinstance(result, SolveResult):
        raise TypeError(f"solver {entry.name!r} returned {type(result).__name__}, not SolveResult")
    if result.seconds <= 0:
        result.seconds = time.perf_counter() - t0 - result.compile_seconds
    # never trust a backend's own certificate: recompute it on the caller's G
    return finalize(
        A,
        result.alpha,
        solver=entry.name,
        tol=tol,
        iterations=result.iterations,
        seconds=result.seconds,
        stationary=result.status == "pareto_stationary",
        compile_seconds=result.compile_seconds,
        info=result.info,
    )
