"""The α-balancing policy of PUB as one small object with explicit state: ``G → α``.

Yuan, Cai & Dong, "A Parameter Update Balancing Algorithm for Multi-task Ranking Models in
Recommendation Systems", ICDM 2024, Algorithm 1 lines 12–14 (DESIGN §3): given the Gram matrix
``G = DᵀD`` of the per-task updates (float64, n×n; :func:`gram64` forms it), α solves
``Gα = 1/α`` (Claim 1) through a registered solver backend (``mtopt.solvers.solve``). Around
that one equation :class:`Balance` owns the policy decisions, each explicit:

* **schedule** — solve every ``solve_every`` steps, reusing the last α in between; the first
  call always solves (a counter ``since_solve`` starts at ``solve_every``);
* **scale** — ``alpha_scale="frobenius"`` solves on ``G/‖G‖_F`` (the authors' code, default),
  ``"exact"`` on ``G`` itself (Algorithm 1 literally);
* **warm start** — the previous α is passed as ``alpha0`` when the backend accepts it
  (``warm_start``, decided by the caller from the backend's signature) and there is one;
* **fallback** — a solve without status ``ok``: ``"previous"`` keeps the last α (and gives
  ``None``, i.e. skip the step, when there is none yet: the first step), ``"skip"`` gives
  ``None``; a non-finite ``G`` gives ``None`` with status ``nonfinite`` (not counted as a
  fallback, the owner skips the whole step);
* **fixed α** — an ablation: ``fixed_alpha`` is returned every step, ``G`` is never formed;
* **counters** — ``solves``, ``reuses``, ``fallbacks``, ``skipped`` (:attr:`Balance.counts`).

The object does not know about parameters, gradients or the registry: the caller passes a
callable that forms ``G`` (called only when a solve is due), the backend (a name, or a backend
resolved once with :func:`mtopt.solvers.get_solver`) and whether it takes ``alpha0``
(:func:`accepts_alpha0`). :meth:`Balance.state_dict` is the layout PUB checkpoints under
``"extra"``; the counters are checkpointed by the owner (PUB: under ``"stats"``).

**Other weightings** (issue #17: PUB's D with any Gramian weighting): given ``weighting`` (a
:class:`mtopt.weightings.Weighting`, e.g. MGDA, IMTL-G, CAGrad, UPGrad, Aligned-MTL, FairGrad),
a due solve calls ``weighting(G)`` on the same (scaled) G instead of the Nash equation; the
schedule, fallback, fixed α, counters and checkpoint layout are unchanged, ``status`` and
``residual`` are the weighting's own (its optimality certificate). Without ``weighting`` (the
default) the Nash path above runs exactly as before, bit for bit.

The same policy serves Nash-MTL (Navon et al., "Multi-Task Learning as a Bargaining Game",
ICML 2022, eq. 2: the same equation on gradients): the training method
:class:`mtopt.methods.grad.nashmtl.NashMTL` (``fallback="previous"``, warm start, its
``update_weights_every`` as ``solve_every``), the pure aggregator
:class:`mtopt.methods.aggregators.nashmtl.NashMTL` (``fallback="skip"``, no warm start, a solve
per call) and the toy's Nash-MTL. Nash-MTL's max-norm clipping is its own rule and stays there.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError

ALPHA_SCALES = ("exact", "frobenius")
FALLBACKS = ("previous", "skip")
#: default of ``alpha_scale`` (settled by bench/alpha_scale_study.py, docs/alpha_scale.md)
DEFAULT_ALPHA_SCALE = "frobenius"
#: columns per fp64 chunk when forming G = DᵀD (fits a core's cache for n ≤ 8)
GRAM_CHUNK = 1 << 14
#: below this many entries of D, G is formed by broadcasting instead of a BLAS product
SMALL_GRAM = 1 << 16


def gram64(
    D: torch.Tensor, chunk: int = GRAM_CHUNK, *, small: int = SMALL_GRAM, symmetrize: bool = False
) -> np.ndarray:
    """``D Dᵀ`` (rows of ``D`` are the task updates) accumulated in float64, chunk by chunk.

    The one Gram routine of the package (:mod:`mtopt.methods.linalg` calls it too). The
    summation order is part of the result's last bits, so it is explicit:

    * ``n·d ≤ small``: broadcast products summed by torch (no BLAS call: thread start-up
      dominates tiny products); ``small=0`` turns this path off;
    * float64 ``D``: one BLAS product ``D @ Dᵀ``;
    * otherwise ``chunk`` columns at a time, cast to float64 and added into ``G`` (``addmm_``),
      so the float64 copy is bounded.

    PUB uses the defaults; the gradient methods use ``chunk=2**20, small=0, symmetrize=True``
    (their historical order, :func:`mtopt.methods.linalg.gram64`). ``symmetrize`` returns
    ``½(G + Gᵀ)``.
    """
    n, d = D.shape
    if n * d <= small:
        x = D.to(torch.float64)
        A = (x.unsqueeze(1) * x.unsqueeze(0)).sum(-1).cpu().numpy()
    elif D.dtype == torch.float64:
        A = (D @ D.T).cpu().numpy()
    else:
        G = torch.zeros(n, n, dtype=torch.float64, device=D.device)
        for s in range(0, d, chunk):
            x = D[:, s : s + chunk].to(torch.float64)
            G.addmm_(x, x.T)
        A = G.cpu().numpy()
    return 0.5 * (A + A.T) if symmetrize else A


def accepts_alpha0(solver: Any) -> bool:
    """Whether a solver backend (a :class:`~mtopt.solvers.Backend` or a callable) takes a warm
    start ``alpha0``, read from its signature (``**kwargs`` counts)."""
    try:
        params = inspect.signature(getattr(solver, "fn", solver)).parameters
    except (TypeError, ValueError):
        return False
    return "alpha0" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def parse_fixed_alpha(value: Any, n: int) -> np.ndarray:
    """``fixed_alpha`` as n positive finite float64 numbers (one number: every task)."""
    try:
        a = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.size == 1:
        a = np.full(n, float(a[0]))
    if a.size != n or not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise InputError(
            f"fixed_alpha: expected a positive number or {n} positive numbers (one per task), "
            f"got {value!r}"
        )
    return a


@dataclass(frozen=True)
class BalancePolicy:
    """The validated hyperparameters of :class:`Balance` (see the module docstring).

    ``tol=None`` takes the solvers' default (``mtopt.solvers.base.DEFAULT_TOL``).
    """

    solve_every: int = 1
    alpha_scale: str = DEFAULT_ALPHA_SCALE
    fallback: str = "previous"
    tol: float | None = None

    def __post_init__(self) -> None:
        from mtopt.solvers.base import DEFAULT_TOL

        if self.alpha_scale not in ALPHA_SCALES:
            raise InputError(
                f"alpha_scale: must be one of {', '.join(ALPHA_SCALES)}, got {self.alpha_scale!r}"
            )
        if self.fallback not in FALLBACKS:
            raise InputError(
                f"fallback: must be one of {', '.join(FALLBACKS)}, got {self.fallback!r}"
            )
        every = self.solve_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError(f"solve_every: must be an integer ≥ 1, got {every!r}")
        tol = DEFAULT_TOL if self.tol is None else self.tol
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
            raise InputError(f"tol: must be a positive finite number, got {tol!r}")
        object.__setattr__(self, "tol", float(tol))


@dataclass
class BalanceRecord:
    """What one :meth:`Balance.weights` call did (field names as in ``PUB.last``)."""

    #: a solve was attempted
    solved: bool = False
    #: solver status; ``reused`` between solves; ``fixed``; ``nonfinite`` for a non-finite G
    status: str = "none"
    #: residual ``maxᵢ|αᵢ(Gα)ᵢ − 1|`` of the latest solve on the G it solved (scaled if frobenius)
    residual: float | None = None
    solve_seconds: float = 0.0
    gram_seconds: float = 0.0
    iterations: int = 0
    #: ``applied``, ``fallback-previous`` or ``skipped`` (``none`` for a non-finite G)
    action: str = "none"
    #: the Gram matrix the solver saw, and ‖G‖_F of the raw one, when a solve was attempted
    gram: list[list[float]] | None = None
    gram_fro: float | None = None


class Balance:
    """``G → α`` with a solve schedule, scaling, warm start, fallback and counters.

    Args:
        policy: :class:`BalancePolicy` (``solve_every``, ``alpha_scale``, ``fallback``, ``tol``).
        solver: a built-in solver name (resolved here, once), or a backend resolved by the
            caller (a :class:`~mtopt.solvers.Backend` — how the composition root passes a
            recipe's solver, plugins included — or any callable
            ``solve(G, *, tol, **options) -> SolveResult``); the resolved backend is passed to
            :func:`mtopt.solvers.solve` on every solve.
        warm_start: pass the previous α as ``alpha0`` (only if the backend accepts it:
            :func:`accepts_alpha0`). It replaces an ``alpha0`` in ``solver_options``, which
            then only starts the first solve.
        solver_options: extra keyword arguments for the backend.
        fixed_alpha: an ablation: this α (already parsed, :func:`parse_fixed_alpha`) every step.
        weighting: None (the Nash equation through ``solver``) or a
            :class:`mtopt.weightings.Weighting` called on G instead (``solver``, ``warm_start``
            and ``solver_options`` are then unused).
    """

    def __init__(
        self,
        policy: BalancePolicy | None = None,
        *,
        solver: Any = "newton",
        warm_start: bool = True,
        solver_options: dict[str, Any] | None = None,
        fixed_alpha: np.ndarray | None = None,
        weighting: Any = None,
    ) -> None:
        self.policy = BalancePolicy() if policy is None else policy
        from mtopt.solvers.backends import as_backend

        #: the backend, resolved once (a name is a built-in; a Backend or callable as given)
        self.backend = as_backend(solver)
        self.solver = self.backend.name
        self.warm_start = bool(warm_start)
        self.solver_options = dict(solver_options or {})
        self.fixed = fixed_alpha
        #: a Gramian weighting used instead of the Nash solve (None: the Nash equation)
        self.weighting = weighting
        #: the α of the latest successful solve (None before the first one)
        self.alpha: np.ndarray | None = None
        self.since_solve = self.policy.solve_every  # so that the first call solves
        self.last_residual: float | None = None
        self.counts: dict[str, int] = {"solves": 0, "reuses": 0, "fallbacks": 0, "skipped": 0}

    @property
    def solver_name(self) -> str:
        """The backend's name (a registered name, or a bare callable's ``__name__``)."""
        return self.solver

    def solve_due(self) -> bool:
        """Whether the next :meth:`weights` call solves (it forms G); False with ``fixed_alpha``."""
        if self.fixed is not None:
            return False
        return self.alpha is None or self.since_solve + 1 > self.policy.solve_every

    def current(self) -> np.ndarray | None:
        """The α a call that does not solve would return (``fixed_alpha``, or the last solve's)."""
        return self.fixed if self.fixed is not None else self.alpha

    def weights(self, gram: Callable[[], np.ndarray]) -> tuple[np.ndarray | None, BalanceRecord]:
        """α for this step (None: skip the step) and what was done; ``gram()`` forms G."""
        from mtopt.solvers import solve

        rec = BalanceRecord()
        pol = self.policy
        if self.fixed is not None:
            rec.status = "fixed"
            rec.action = "applied"
            return self.fixed, rec
        self.since_solve += 1
        due = self.alpha is None or self.since_solve > pol.solve_every
        if not due:
            self.counts["reuses"] += 1
            rec.status = "reused"
            rec.residual = self.last_residual
            rec.action = "applied"
            return self.alpha, rec
        self.since_solve = 1
        t0 = time.perf_counter()
        G = gram()
        rec.gram_seconds = time.perf_counter() - t0
        rec.solved = True
        if not np.all(np.isfinite(G)):
            rec.status = "nonfinite"
            return None, rec
        fro = float(np.linalg.norm(G))
        rec.gram_fro = fro
        if pol.alpha_scale == "frobenius" and fro > 0:
            G = G / fro
        rec.gram = G.tolist()
        if self.weighting is not None:
            return self._weighting_step(G, rec)
        opts = dict(self.solver_options)
        if self.warm_start and self.alpha is not None:
            opts["alpha0"] = self.alpha.copy()
        assert pol.tol is not None
        res = solve(G, solver=self.backend, tol=pol.tol, validate="light", **opts)
        return self._accept(res, rec)

    def _weighting_step(
        self, G: np.ndarray, rec: BalanceRecord
    ) -> tuple[np.ndarray | None, BalanceRecord]:
        """A due solve with :attr:`weighting` in place of the Nash equation (same fallback)."""
        return self._accept(self.weighting(G), rec)

    def _accept(self, res: Any, rec: BalanceRecord) -> tuple[np.ndarray | None, BalanceRecord]:
        """Count a solve and apply the policy to its result (a ``SolveResult`` or a
        weighting's): α if ``ok``, else the fallback (the previous α, or skip)."""
        self.counts["solves"] += 1
        rec.status = res.status
        rec.residual = res.residual
        rec.solve_seconds = res.seconds
        rec.iterations = res.iterations
        if res.ok:
            assert res.alpha is not None
            self.alpha = np.asarray(res.alpha, dtype=np.float64)
            self.last_residual = res.residual
            rec.action = "applied"
            return self.alpha, rec
        self.counts["fallbacks"] += 1
        if self.policy.fallback == "previous" and self.alpha is not None:
            rec.action = "fallback-previous"
            return self.alpha, rec
        self.counts["skipped"] += 1
        rec.action = "skipped"
        return None, rec

    def state_dict(self) -> dict[str, Any]:
        """α, schedule position and settings (PUB's checkpoint layout, key ``"extra"``)."""
        return {
            "alpha": None if self.alpha is None else [float(x) for x in self.alpha],
            "since_solve": self.since_solve,
            "last_residual": self.last_residual,
            "solver": self.solver_name,
            "alpha_scale": self.policy.alpha_scale,
            "solve_every": self.policy.solve_every,
            **({} if self.weighting is None else {"weighting": self.weighting.name}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore α and the schedule position (the settings are this object's own)."""
        a = state["alpha"]
        self.alpha = None if a is None else np.asarray(a, dtype=np.float64)
        self.since_solve = int(state["since_solve"])
        self.last_residual = state["last_residual"]
