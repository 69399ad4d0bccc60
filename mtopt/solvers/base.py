"""The solver contract: input validation, :class:`SolveResult`, the residual certificate.

Every backend solves PUB's balancing equation (Yuan et al., ICDM 2024, Sec. V-B, Claim 1)::

    G α = 1/α,   α > 0,   G = DᵀD  (n×n, symmetric positive semi-definite)

and is called through :func:`solve`, which validates ``G`` (with *relative* tolerances on the
unit-diagonal ``C = S G S``, ``S = diag(1/√Gᵢᵢ)``), handles inputs that have no solution,
recomputes the residual ``r(α) = maxᵢ |αᵢ (Gα)ᵢ − 1|`` of whatever the backend returns and sets
the status from it. A backend therefore can never return an α without its certificate.

Validation is cheap on the common path (a Cholesky PSD test, :func:`psd_cholesky`, with the
eigenvalue test only as the fallback that decides unclear cases), and ``solve(...,
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

DEFAULT_TOL = 1e-6
STATUSES = ("ok", "not_converged", "pareto_stationary")

#: relative tolerance of the symmetry check on C = SGS
SYM_RTOL = 1e-9
#: smallest eigenvalue allowed for C = SGS (unit diagonal) before G counts as not PSD
PSD_TOL = 1e-8
#: a column whose squared norm Gᵢᵢ is below this (0 or subnormal) is treated as zero. The
#: test is absolute, not relative to the largest column: by the scaling law α(SGS) = S⁻¹α(G)
#: a column of norm 1e-30 next to one of 1e30 is a legitimate task, not a zero update
ZERO_DIAG = float(np.finfo(np.float64).tiny)
#: largest |Gᵢⱼ| accepted: beyond it ½(G + Gᵀ), α·(Gα) and the certificate overflow float64
MAX_ENTRY = 1e300
#: ``validate=`` modes of :func:`solve`
VALIDATE_MODES = ("full", "light")

_TINY = float(np.finfo(np.float64).tiny)
_EPS = float(np.finfo(np.float64).eps)
# ufuncs called directly: ndarray.max()/np.any() add ~1 µs of Python wrapper per call, which
# matters when the whole solve of a 3×3 G takes ~10 µs
_isfinite = np.isfinite
_min = np.minimum.reduce
_max = np.maximum.reduce
_abs = np.absolute
_all = np.logical_and.reduce
try:  # numpy's LAPACK Cholesky gufunc without np.linalg.cholesky's checks (~3 µs/call)
    from numpy.linalg import _umath_linalg as _ul

    _cholesky_lo: Any = _ul.cholesky_lo
    with np.errstate(invalid="ignore"):
        _cholesky_lo(np.eye(2), signature="d->d")
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other numpy layouts
    _cholesky_lo = None


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
    return float(_max(_abs(a * (np.asarray(G, dtype=np.float64) @ a) - 1.0), axis=None))


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
    C = (G * s[:, None]) * s[None, :]  # |Gᵢⱼ·sᵢ| ≤ √Gⱼⱼ: no intermediate overflow
    np.fill_diagonal(C, 1.0)
    return C, s


def _as_matrix(G: Any, name: str) -> np.ndarray:
    """``G`` as a float64 array (no copy when it already is one), after the shape and
    finiteness checks."""
    try:
        A = np.asarray(G, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidGramError(f"{name}: not a numeric matrix ({exc})") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InvalidGramError(f"{name}: must be a square n×n matrix, got shape {A.shape}")
    if A.shape[0] == 0:
        raise InvalidGramError(f"{name}: is empty; give at least one task")
    if not _all(_isfinite(A), axis=None):
        raise InvalidGramError(f"{name}: contains NaN or Inf; remove non-finite entries")
    big = float(_max(_abs(A), axis=None))
    if big > MAX_ENTRY:
        raise InvalidGramError(
            f"{name}: entries up to {big:.3g} overflow float64 arithmetic (limit "
            f"{MAX_ENTRY:g}); divide G by a constant c (α then scales by √c)"
        )
    return A


def _chol_ok(M: np.ndarray) -> bool:
    """Whether LAPACK's Cholesky factorisation of ``M`` (lower triangle read) succeeds."""
    if _cholesky_lo is None:  # pragma: no cover - other numpy layouts
        try:
            np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return False
        return True
    with np.errstate(invalid="ignore"):  # failure fills the factor with NaN
        L = _cholesky_lo(M, signature="d->d")
    return bool(L[-1, -1] == L[-1, -1])


def psd_cholesky(C: np.ndarray) -> bool:
    """Cholesky PSD test of a unit-diagonal ``C``: ``True`` implies ``λmin(C) > −PSD_TOL·n``.

    The test factors ``C + ½·PSD_TOL·n·I``. In exact arithmetic it succeeds iff
    ``λmin(C) > −½·PSD_TOL·n``; the factorisation's backward error (``O(n²ε)``, ~1e-14 for
    n = 10) is far below the remaining margin ``½·PSD_TOL·n``, so success implies that the
    eigenvalue test of :func:`validate_gram` passes too. ``False`` is inconclusive (the
    smallest eigenvalue lies below ``−½·PSD_TOL·n``, possibly still above ``−PSD_TOL·n``):
    the caller then decides with ``eigvalsh``, so the decisions agree exactly with it.
    Only the lower triangle of ``C`` is read; its diagonal must be 1.
    """
    return _shifted_chol_ok(C.copy())


def _shifted_chol_ok(C: np.ndarray) -> bool:
    """:func:`psd_cholesky` on a scratch array: sets its diagonal to ``1 + ½·PSD_TOL·n``."""
    n = C.shape[0]
    C.reshape(-1)[:: n + 1] = 1.0 + 0.5 * PSD_TOL * max(1, n)
    return _chol_ok(C)


def _fast_pass(A: np.ndarray, psd: bool) -> np.ndarray | None:
    """``0.5(A + Aᵀ)`` when ``A`` passes :func:`validate_gram`'s checks by a *sufficient*
    margin; ``None`` when it is not clear (the full checks then decide, with their messages).

    Only for a positive diagonal (no zero column). Symmetry: ``max|A − Aᵀ| ≤
    ½·SYM_RTOL·min Gᵢᵢ`` implies ``|Gij − Gji| ≤ SYM_RTOL·√(Gii Gjj)`` for every pair. PSD:
    the Cholesky test of :func:`psd_cholesky` on ``C = S·½(A + Aᵀ)·S``.
    """
    d = A.diagonal()
    dmin = float(_min(d))
    if not dmin >= ZERO_DIAG:
        return None  # zero or negative diagonal entries: the full checks handle them
    At = A.T
    if float(_max(_abs(A - At), axis=None)) > 0.5 * SYM_RTOL * dmin:
        return None
    S = A + At
    S *= 0.5
    if psd:
        s = 1.0 / np.sqrt(d)
        if not _shifted_chol_ok((S * s[:, None]) * s):
            return None
    return S


def _full_checks(A: np.ndarray, name: str, psd: bool) -> np.ndarray:
    """The reference checks (relative symmetry, zero columns, eigenvalue PSD test); raises
    :class:`InvalidGramError` with one clear line, else returns ``0.5(A + Aᵀ)``."""
    d = np.diag(A)
    if np.any(d < 0):
        raise InvalidGramError(
            f"{name}: negative diagonal entry {d.min():.3g}; a Gram matrix DᵀD is PSD"
        )
    rd = np.sqrt(d)
    scale = np.outer(rd, rd)
    big = max(float(d.max()), _TINY)
    asym = np.abs(A - A.T)
    if np.any(asym > SYM_RTOL * scale + 1e-300) and np.any(asym > SYM_RTOL * big):
        i, j = np.unravel_index(np.argmax(asym - SYM_RTOL * scale), A.shape)
        raise InvalidGramError(
            f"{name}: not symmetric (G[{i},{j}]={A[i, j]:.6g} vs G[{j},{i}]={A[j, i]:.6g}); "
            "pass G = DᵀD or symmetrise it"
        )
    A = 0.5 * (A + A.T)
    if not psd:
        return A
    pos = d >= ZERO_DIAG
    if np.any(~pos):
        # a zero column must have a zero row too (|Gij| ≤ √(Gii Gjj))
        off = np.abs(A[~pos][:, pos])
        lim = np.outer(rd[~pos], rd[pos]) + SYM_RTOL * big
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


def validate_gram(G: Any, name: str = "G", *, psd: bool = True) -> np.ndarray:
    """Check ``G`` and return it as a symmetric float64 array (``½(G + Gᵀ)``, a new array).

    Raises :class:`InvalidGramError` (an :class:`~mtopt.errors.InputError`) when ``G`` is not
    2-D square, empty, not finite, not symmetric or not PSD. Symmetry and PSD are judged with
    relative tolerances on the unit-diagonal ``C = SGS`` so that column norms of 1e-4…1e4 are
    legitimate; zero columns are allowed here (they make the point Pareto-stationary).

    The PSD criterion is ``λmin(C) ≥ −PSD_TOL·n``. It is decided by a Cholesky factorisation
    of ``C + ½·PSD_TOL·n·I`` (:func:`psd_cholesky`), which settles every clearly valid input;
    only when that fails, or a column is (numerically) zero, or symmetry is not clear by a
    factor 2, are the reference checks (``eigvalsh`` of ``C``) run, so the accept/reject
    decisions and messages are those of the eigenvalue test. ``psd=False`` skips the PSD
    checks (shape, finiteness, non-negative diagonal and symmetry only).
    """
    A = _as_matrix(G, name)
    S = _fast_pass(A, psd)
    if S is not None:
        return S
    return _full_checks(A, name, psd)


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
