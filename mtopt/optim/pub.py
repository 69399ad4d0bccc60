"""PUB, Parameter Update Balancing, as a ``torch.optim.Optimizer`` — plus standalone AdaTask.

Implements Algorithm 1 of Yuan, Cai & Dong, "A Parameter Update Balancing Algorithm for
Multi-task Ranking Models in Recommendation Systems", ICDM 2024 (DESIGN §3). Per step, on the
shared parameters θ (all of them together, one α per step):

1. per-task gradients ``gᵢ = ∇θ Lᵢ`` — PUB runs the backward passes itself, one per task with the
   graph retained (``backward="loop"``, the default: measured faster than ``"batched"``, one
   ``is_grads_batched`` backward, on CPU — see docs/pub.md); a parameter task i does not reach
   gets ``gᵢ = 0``. The same passes also give the task-specific parameters their gradient of
   ``Σᵢ Lᵢ``, so no extra backward is spent on them;
2. per-task updates with the base rule's moments held constant (:mod:`mtopt.optim.rules`),
   ``Δθᵢ = f(gᵢ)``; optional UMMs (:mod:`mtopt.optim.umm`) act here or on the joint update;
3. ``G = DᵀD`` in float64 (per-chunk fp64 accumulation) and α from ``Gα = 1/α`` through the
   registered solver backend (``mtopt.solvers.solve``) every ``solve_every`` steps, reusing the
   last α in between;
4. ``θ ← θ − lr·Dα``;
5. the moments are fed ``ĝ = Σαᵢgᵢ`` with the α actually applied (AdaTask: each task's own
   moments are fed its own ``gᵢ``).

Task-specific parameters take the plain base step (an internal ``torch.optim.Adam`` / ``Adagrad``
/ ``RMSprop``) on the gradient of the sum of the losses.

Decisions (details in docs/pub.md):

* ``alpha_scale="frobenius"`` is the default (settled by bench/alpha_scale_study.py, see
  docs/alpha_scale.md: it beat ``"exact"`` on all 9 paired runs, mean validation AUC 0.763 vs
  0.478): α is solved on ``G/‖G‖_F`` as in the
  authors' code (which produced the paper's tables). ``"exact"`` is Algorithm 1 on the raw
  ``G``: the shared step then has norm exactly ``lr·√n`` whatever the size of the per-task
  updates (DESIGN §2.3), ~√d times shorter than Adam's at the same lr, and the moments are fed
  ``αᵢ ~ 1/‖Δθᵢ‖``-scaled gradients, i.e. they barely move.
* Weight decay (L2, torch.optim's convention) is applied once per step: each task's update is
  formed from ``gᵢ + wd·θ`` (the step torch would take for that task alone) and the moments are
  fed ``Σαᵢgᵢ + wd·θ`` (the decay counted once, not ``Σαᵢ`` times and never once per task).
* Degenerate steps (solver status ``pareto_stationary`` / ``not_converged``): ``fallback=
  "previous"`` keeps the last α (and skips the shared step when there is none yet),
  ``"skip"`` skips the shared step; a skipped shared step neither moves θ nor feeds the moments
  (the bias-correction counter does not advance). A step with any non-finite gradient or update
  is skipped entirely (shared and task parameters) and counted; no NaN/Inf is ever written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from mtopt import catalog
from mtopt.deprecation import moved
from mtopt.errors import InputError, UnknownNameError
from mtopt.optim.balance import (
    DEFAULT_ALPHA_SCALE,
    Balance,
    BalancePolicy,
    accepts_alpha0,
    parse_fixed_alpha,
)
from mtopt.optim.multitask import MultiTaskUpdate
from mtopt.optim.umm import UMM, AdaTaskUMM, make_umms
from mtopt.optim.weighted import DEFAULT_WEIGHTED_TOL
from mtopt.solvers.backends import Backend, as_backend
from mtopt.weightings import Weighting, get_weighting
from mtopt.weightings.nash import Nash

__all__ = ["DEFAULT_ALPHA_SCALE", "PUB", "AdaTask", "resolve", "resolve_weighting"]

#: names that lived here before the split along Algorithm 1's pieces (kept for one release)
__getattr__, _ = moved(
    __name__,
    {
        "ALPHA_SCALES": "mtopt.optim.balance",
        "FALLBACKS": "mtopt.optim.balance",
        "GRAM_CHUNK": "mtopt.optim.balance",
        "SMALL_GRAM": "mtopt.optim.balance",
        "gram64": "mtopt.optim.balance",
        "LastStep": "mtopt.optim.diagnostics",
        "diff_metric": "mtopt.optim.diagnostics",
        "BACKWARDS": "mtopt.optim.grads",
        "ROW_CHUNK": "mtopt.optim.rows",
    },
)


def _builtin_umm(name: str) -> Any:
    """The factory of the built-in UMM ``name`` (:mod:`mtopt.catalog`, no registry)."""
    row = catalog.builtin("umm", name)
    if row is None:
        known = ", ".join(sorted(r.name for r in catalog.rows("umm")))
        raise UnknownNameError(
            f"unknown umm {name!r} (known: {known}); a plugin UMM is passed as an instance "
            "or factory, e.g. mtopt.registry.registry.get('umm', name)"
        )
    return catalog.load(row.target)


def resolve(
    solver: Any, umm: Any, umm_options: dict[str, Any] | None = None
) -> tuple[Backend | None, bool, list[UMM]]:
    """Every name given to :mod:`mtopt.optim` as a string, resolved once, at construction.

    ``solver`` is a built-in solver name, a :class:`mtopt.solvers.Backend` (how the composition
    root passes a recipe's solver, plugins included) or a backend callable; ``umm`` a built-in
    UMM name, a :class:`~mtopt.optim.umm.UMM`, a UMM factory, or a list of those. Returns the
    backend (None for ``solver=None``), whether it takes a warm start ``alpha0``, and the UMMs
    (:func:`mtopt.optim.umm.make_umms`). Unknown names raise here, listing the known ones.
    """
    backend = None if solver is None else as_backend(solver)
    warm = backend is not None and accepts_alpha0(backend)
    return backend, warm, make_umms(umm, umm_options, lookup=_builtin_umm)


def resolve_weighting(weighting: Any, options: dict[str, Any] | None = None) -> Weighting | None:
    """PUB's ``weighting`` resolved once: None for the Nash equation through the α solver (the
    default, Algorithm 1 exactly: ``"nash"`` by name, or the :class:`~mtopt.weightings.nash.Nash`
    class as the composition root hands it down, without options), else a
    :class:`~mtopt.weightings.Weighting` — a built-in name (catalog), a Weighting class or
    factory (the composition root's resolved entry, plugins included) with ``options``, or an
    instance."""
    opts = dict(options or {})
    if (
        weighting is None
        or weighting is Nash
        or (
            isinstance(weighting, str)
            and catalog.builtin("weighting", weighting) is not None
            and catalog.builtin("weighting", weighting).name == "nash"  # type: ignore[union-attr]
        )
    ):
        if opts:
            raise InputError(
                "weighting_options: the default weighting 'nash' takes the solver's options "
                "(solver_options, tol), not weighting_options"
            )
        return None
    if isinstance(weighting, (str, Weighting)):
        return get_weighting(weighting, **opts)
    if callable(weighting):
        try:
            made = weighting(**opts)
        except TypeError as exc:
            raise InputError(f"weighting_options: bad options ({exc})") from None
        if isinstance(made, Weighting):
            return made
    raise InputError(f"weighting: expected a weighting name or a Weighting, got {weighting!r}")


class PUB(MultiTaskUpdate):
    """Parameter Update Balancing (Yuan, Cai & Dong, ICDM 2024, Algorithm 1; α from Claim 1,
    ``DᵀDα = 1/α``) for Adam / AdaGrad / RMSProp, with optional UMMs Clippy and AdaTask.

    Usage in any training loop::

        opt = PUB(model.shared_parameters(), model.all_task_parameters(), lr=1e-3)
        for batch in data:
            opt.zero_grad()
            opt.step(model.losses(batch))      # n scalar losses; PUB does the backward passes

    Args:
        shared_params: parameters every task's loss depends on (one flat θ, one α per step).
        task_params: one iterable of parameters per task (may be empty); they take the plain
            base-rule step on the gradient of ``Σᵢ Lᵢ``.
        lr, betas, eps, weight_decay: as in ``torch.optim`` for the base rule (``eps=None``: the
            rule's torch default, 1e-8 for Adam/RMSProp and 1e-10 for AdaGrad). One param group
            for the shared parameters, then one per task, so LR schedulers work.
        base: ``"adam"``, ``"adagrad"`` or ``"rmsprop"``.
        umm: None, ``"clippy"``, ``"adatask"``, a :class:`~mtopt.optim.umm.UMM`, or a list.
        solver: a registered α solver backend (``mtopt list solvers``); it receives the previous
            α as ``alpha0`` when its signature accepts that.
        solve_every: solve α every k steps, reusing the last α in between (the paper uses 10).
        alpha_scale: ``"frobenius"`` (default) or ``"exact"``, see the module doc.
        fallback: ``"previous"`` or ``"skip"`` when the solver fails (module doc).
        paper_exact: Algorithm 1 literally for Adam/RMSProp (no bias correction, eps in the root).
        base_options: torch.optim extras: AdaGrad ``lr_decay``, ``initial_accumulator_value``;
            RMSProp ``alpha`` (the smoothing constant).
        umm_options: keyword arguments of a single UMM given by name.
        solver_options: extra keyword arguments for the solver backend.
        tol: residual at or below which a solve counts as ``ok``.
        backward: ``"loop"`` (n backward passes, default) or ``"batched"`` (``is_grads_batched``).
        diagnostics: compute cos(gradient, update) on shared and task parameters and Diff
            (paper §III eq. (1)) each step into ``opt.last.diagnostics`` (a few extra passes).
        row_wise: shared 2-D tables (embeddings) kept in D but handled row by row: per-task
            updates only on the rows the batch touched (sparse gradients of
            ``nn.Embedding(sparse=True)``, or the nonzero rows of dense ones); every other row
            takes the one update ``u`` all tasks share there (their gradient is ``wd·θ`` for all),
            adding ``‖u‖²`` to every entry of ``DᵀD`` and moving by ``(Σαᵢ)·u`` — equal to dense
            PUB, without n copies of the table (docs/scaling.md). Single process only.
        plain: shared tensors taken out of D: they take the plain base step on ``∇Σᵢ Lᵢ`` like
            the task-specific parameters (not Algorithm 1; cheap).
        fixed_alpha: an ablation, not PUB: a positive number (every task) or one per task used
            as α at every step instead of a solve (no G is formed; ``last.status`` is
            ``"fixed"``). ``fixed_alpha=1`` is the plain sum of the per-task updates, which is
            what a PUB whose solver silently fails (α stays at its start value) computes.
        between_solves: ``"per-task"`` (default: Algorithm 1 exactly, n backward passes every
            step) or ``"weighted"``: on steps that do not solve, one backward of
            ``Σᵢ(αᵢ/S)Lᵢ`` and the step ``S·Δ(ḡ)`` — exact except that every task's second
            moment denominator holds ``ḡ²`` instead of ``gᵢ²`` (:mod:`mtopt.optim.weighted`;
            refused with AdaGrad, UMMs, diagnostics and ``plain``).
        weighted_tol: the weighted path is taken only while the newest gradient's weight in
            the second moment, ``(1−β₂)/(1−β₂ᵗ)``, is at most this (default 0.02: Adam is
            exact for its first 51 steps).
        weighting: the Gramian weighting fed D's Gram (issue #17, docs/pub.md): ``"nash"``
            (default: ``Gα = 1/α`` through ``solver``, Algorithm 1 bit for bit) or any
            registered weighting (``mtopt list weightings``: ``mgda``, ``imtl-g``, ``cagrad``,
            ``upgrad``, ``aligned-mtl``, ``fairgrad``), a Weighting class or an instance; it
            sees the same G (``alpha_scale``) on the same schedule, with the same fallback.
            ``‖Dα‖`` differs by weighting (each one's module documents its scale).
        weighting_options: keyword arguments of a weighting given by name or class
            (e.g. ``{"c": 0.4}`` for CAGrad, ``{"fair_alpha": 2.0}`` for FairGrad).
        groups: per-group balancing (:mod:`mtopt.optim.groups`): None (one α for all of D,
            Algorithm 1), ``"layer"`` (one group per shared tensor) or lists of shared tensors
            covering D; one Gram and one α per group, each with the same weighting and policy.
            One group is Algorithm 1 bit for bit.
    """

    def __init__(
        self,
        shared_params: Iterable[torch.Tensor],
        task_params: Sequence[Iterable[torch.Tensor]],
        lr: float = 1e-3,
        base: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        umm: str | UMM | Sequence[str | UMM] | None = None,
        solver: str = "newton",
        solve_every: int = 1,
        alpha_scale: str = DEFAULT_ALPHA_SCALE,
        fallback: str = "previous",
        *,
        paper_exact: bool = False,
        base_options: dict[str, Any] | None = None,
        umm_options: dict[str, Any] | None = None,
        solver_options: dict[str, Any] | None = None,
        tol: float | None = None,
        backward: str = "loop",
        diagnostics: bool = False,
        row_wise: Iterable[torch.Tensor] = (),
        plain: Iterable[torch.Tensor] = (),
        fixed_alpha: float | Sequence[float] | None = None,
        between_solves: str = "per-task",
        weighted_tol: float = DEFAULT_WEIGHTED_TOL,
        weighting: Any = "nash",
        weighting_options: dict[str, Any] | None = None,
        groups: Any = None,
    ) -> None:
        policy = BalancePolicy(
            solve_every=solve_every, alpha_scale=alpha_scale, fallback=fallback, tol=tol
        )
        backend, warm, umms = resolve(solver, umm, umm_options)
        assert backend is not None
        wt = resolve_weighting(weighting, weighting_options)
        if wt is not None and fixed_alpha is not None:
            raise InputError("weighting: fixed_alpha replaces the weighting; give one of them")

        def balance(n: int) -> Balance:
            fixed = None if fixed_alpha is None else parse_fixed_alpha(fixed_alpha, n)
            return Balance(
                policy,
                solver=backend,
                warm_start=warm,
                solver_options=solver_options,
                fixed_alpha=fixed,
                weighting=wt,
            )

        super().__init__(
            shared_params,
            task_params,
            lr=lr,
            base=base,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            umms=umms,
            paper_exact=paper_exact,
            base_options=base_options,
            backward=backward,
            diagnostics=diagnostics,
            balance=balance,
            row_wise=row_wise,
            plain=plain,
            between_solves=between_solves,
            weighted_tol=weighted_tol,
            groups=groups,
        )

    # the balance's settings under PUB's historical attribute names
    @property
    def solver(self) -> str:
        return self.balance.solver_name

    @property
    def weighting(self) -> str:
        """The weighting's name (``nash``: the Nash equation through :attr:`solver`)."""
        w = self.balance.weighting
        return "nash" if w is None else w.name

    @property
    def solver_options(self) -> dict[str, Any]:
        return self.balance.solver_options

    @property
    def solve_every(self) -> int:
        return self.balance.policy.solve_every

    @property
    def alpha_scale(self) -> str:
        return self.balance.policy.alpha_scale

    @property
    def fallback(self) -> str:
        return self.balance.policy.fallback

    @property
    def tol(self) -> float:
        assert self.balance.policy.tol is not None
        return self.balance.policy.tol

    def _extra_state(self) -> dict[str, Any]:
        return self.balance.state_dict()

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.balance.load_state_dict(state)


class AdaTask(MultiTaskUpdate):
    """AdaTask (Yang et al., "AdaTask: A Task-Aware Adaptive Learning Rate Approach to
    Multi-Task Learning", AAAI 2023) as a loss-summing optimizer, the baseline row of the PUB
    paper: shared parameters move by ``−lr·Σᵢ Δθᵢ`` where ``Δθᵢ`` is the base rule's update
    from task i's own accumulated moments; task-specific parameters take the plain base step
    on ``∇Σᵢ Lᵢ``. Same API as :class:`PUB` (``opt.step(losses)``), no α solve.
    """

    def __init__(
        self,
        shared_params: Iterable[torch.Tensor],
        task_params: Sequence[Iterable[torch.Tensor]],
        lr: float = 1e-3,
        base: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        umm: str | UMM | Sequence[str | UMM] | None = None,
        *,
        paper_exact: bool = False,
        base_options: dict[str, Any] | None = None,
        backward: str = "loop",
        diagnostics: bool = False,
    ) -> None:
        _, _, found = resolve(None, umm)
        umms = [u for u in found if not isinstance(u, AdaTaskUMM)]
        if any(u.per_task_moments for u in umms):
            raise InputError("umm: AdaTask already keeps per-task moments")
        super().__init__(
            shared_params,
            task_params,
            lr=lr,
            base=base,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            umms=[AdaTaskUMM(), *umms],
            paper_exact=paper_exact,
            base_options=base_options,
            backward=backward,
            diagnostics=diagnostics,
            balance=lambda n: Balance(fixed_alpha=np.ones(n)),  # Σᵢ Δθᵢ: α = 1, no solve
        )
