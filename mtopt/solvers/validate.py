"""Validation of a Gram matrix ``G`` before any backend sees it: shape, finiteness, size of the
entries, symmetry and positive semi-definiteness, with *relative* tolerances on the unit-diagonal
``C = S G S`` (``S = diag(1/√Gᵢᵢ)``; column norms of 1e-30 … 1e30 are legitimate tasks).

The common path is cheap (a Cholesky PSD test, :func:`psd_cholesky`; the eigenvalue test only
decides unclear cases): :func:`mtopt.solvers.solve` runs it on every solve.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mtopt.errors import InputError

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


def unit_diagonal(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, s)`` with ``C = diag(s) G diag(s)``, ``s = 1/√diag(G)`` (requires diag(G) > 0).

    By the scaling law (DESIGN §2.2) ``α(G) = s ⊙ w(C)``."""
    s = 1.0 / np.sqrt(np.diag(G))
    C = (G * s[:, None]) * s[None, :]  # |Gᵢⱼ·sᵢ| ≤ √Gⱼⱼ: no intermediate overflow
    np.fill_diagonal(C, 1.0)
    return C, s


class InvalidGramError(InputError):
    """``G`` is not a valid Gram matrix (shape, finiteness, symmetry or PSD)."""


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
