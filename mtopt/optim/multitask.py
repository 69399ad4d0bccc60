"""The multi-task update behind :class:`~mtopt.optim.PUB` and :class:`~mtopt.optim.AdaTask`.

One step of Algorithm 1 of Yuan, Cai & Dong, ICDM 2024 (see :mod:`mtopt.optim.pub`), composed
from small pieces: per-task gradients (:mod:`~mtopt.optim.grads`), the base rule's per-task
updates with the moments held constant (:mod:`~mtopt.optim.rules`), UMMs
(:mod:`~mtopt.optim.umm`), row-wise tables (:mod:`~mtopt.optim.rows`), α from
:class:`~mtopt.optim.balance.Balance` (a solve for PUB, fixed ones for AdaTask), then
``θ ← θ − lr·Dα`` and the moment feed; diagnostics from :mod:`~mtopt.optim.diagnostics`.

The step takes one of two paths (``between_solves``): the n per-task gradients of Algorithm 1,
or, between solves with ``"weighted"``, one backward of ``Σ(αᵢ/S)Lᵢ`` run through the same
chain as a single pseudo-task (:mod:`~mtopt.optim.weighted`). The checkpoint contract is
:mod:`~mtopt.optim.checkpoint`.

(About 400 lines, one concept: the step chain of Algorithm 1 with the buffers it owns; the
pieces it composes live in their own modules.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.optim.balance import Balance, gram64
from mtopt.optim.checkpoint import Checkpointing
from mtopt.optim.checks import check_hyperparameters, split_params
from mtopt.optim.diagnostics import LastStep, diagnose
from mtopt.optim.flat import FlatLayout
from mtopt.optim.grads import reduce_task_grads, task_grads_batched, task_grads_loop
from mtopt.optim.groups import (
    GroupedBalance,
    combine,
    decay,
    group_grams,
    group_slices,
    record_alpha,
)
from mtopt.optim.rows import RowReducer, RowTables
from mtopt.optim.rules import BaseRule, make_rule
from mtopt.optim.umm import UMM, UMMContext
from mtopt.optim.weighted import (
    DEFAULT_WEIGHTED_TOL,
    check_between_solves,
    loss_weights,
    newest_weight,
    only_own_loss,
    weighted_grads,
)


class MultiTaskUpdate(Checkpointing, torch.optim.Optimizer):
    """Shared machinery of :class:`PUB` and :class:`AdaTask`: ``step(losses)`` on the shared
    parameters with α from ``balance(n_tasks)``, task-specific parameters by the plain base
    rule (an internal ``torch.optim`` optimizer) on ``∇Σᵢ Lᵢ``. Subclasses choose the balance
    and what of it is checkpointed (:meth:`_extra_state`)."""

    def __init__(
        self,
        shared_params: Iterable[torch.Tensor],
        task_params: Sequence[Iterable[torch.Tensor]],
        *,
        lr: float,
        base: str,
        betas: tuple[float, float],
        eps: float | None,
        weight_decay: float,
        umms: list[UMM],
        paper_exact: bool,
        base_options: dict[str, Any] | None,
        backward: str,
        diagnostics: bool,
        balance: Callable[[int], Balance],
        row_wise: Iterable[torch.Tensor] = (),
        plain: Iterable[torch.Tensor] = (),
        between_solves: str = "per-task",
        weighted_tol: float = DEFAULT_WEIGHTED_TOL,
        groups: Any = None,
    ) -> None:
        self._rule: BaseRule = make_rule(base, paper_exact)
        spec = groups  # per-group balancing (`groups` names the param groups below)
        #: between solves, one backward of Σ(αᵢ/S)Lᵢ instead of n (mtopt.optim.weighted)
        self._weighted = check_between_solves(
            between_solves, weighted_tol, self._rule, umms, diagnostics
        )
        self.between_solves = between_solves
        self.weighted_tol = float(weighted_tol)
        plain = list(plain)
        if self._weighted and plain:
            raise InputError(
                "plain: tensors outside D take the gradient of Σᵢ Lᵢ, which the weighted step's "
                "one backward does not give; use between_solves='per-task', or keep them in D"
            )
        defaults = check_hyperparameters(
            self._rule,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            base_options=base_options,
            backward=backward,
        )
        split = split_params(
            shared_params, task_params, plain=plain, row_wise=row_wise, umms=umms, backward=backward
        )
        self.n_tasks = len(split.tasks)
        self._layout = FlatLayout(split.shared, "shared_params")
        self._umms = umms
        self._per_task = any(u.per_task_moments for u in umms)
        self._backward_mode = backward
        self.diagnostics = bool(diagnostics)

        groups: list[dict[str, Any]] = [{"params": split.shared + split.rows, "role": "shared"}]
        groups += [{"params": ps, "role": "task", "task": i} for i, ps in enumerate(split.tasks)]
        self._init_done = False
        super().__init__(groups, defaults)
        self._init_done = True

        self._shared = self._layout.params
        self._task_list = [p for ps in split.tasks for p in ps]
        self._task_groups = split.tasks
        self._owner = [i for i, ps in enumerate(split.tasks) for _ in ps]
        self._reach_checked = False
        self._build_shared_state(weight_decay)
        self._task_opt = self._make_task_optimizer()
        #: row-wise tables: full-size moments, per-step work on the touched rows only
        self._tables = RowTables(split.rows, self._rule, self.param_groups[0])
        for p, st in zip(self._tables.params, self._tables.state):
            self.state[p] = st
        #: multi-process hook (mtopt.distributed): averages, in place, the stacked per-task
        #: gradients [n, d] (one call) and the flat task-parameter gradients, before any use
        self.grad_reducer: Callable[[torch.Tensor], torch.Tensor] | None = None
        #: multi-process hook for the row-wise tables: given, per (task, table), the touched
        #: rows and their gradient rows, returns the union over processes and the averaged
        #: values (mtopt.distributed.DistContext.reduce_rows; an all-gather of touched rows)
        self.row_reducer: RowReducer | None = None
        self._t = 0  # applied shared updates (bias correction)
        self._calls = 0
        self.last = LastStep()
        self.balance: Any = balance(self.n_tasks)
        #: per-group balancing (mtopt.optim.groups): each group's ranges of θ, or None
        self._slices = None if spec is None else group_slices(spec, self._layout)
        if self._slices is not None:
            if self._tables or self._weighted or (self._per_task and self.diagnostics):
                raise InputError("groups: not with row_wise tables, between_solves='weighted' "
                                 "or AdaTask's per-task moments with diagnostics")  # fmt: skip
            self.balance = GroupedBalance(lambda: balance(self.n_tasks), self._slices)
        self._steps = 0
        self._nonfinite = 0

    # ------------------------------------------------------------------ set-up helpers
    def _build_shared_state(self, weight_decay: float) -> None:
        """Flat buffers of the shared step, the base rule's moments (``[d]``, or ``[n, d]``
        with per-task moments) exposed per parameter in ``self.state``, and UMM state."""
        n, lay = self.n_tasks, self._layout
        self._grads = lay.empty(n)
        self._dirs = lay.empty(n)
        self._work = lay.empty(n) if self._rule.needs_work else None
        self._u = lay.empty()
        self._ghat = lay.empty()
        need_theta = weight_decay != 0 or any(u.needs_params for u in self._umms)
        self._theta: torch.Tensor | None = lay.empty() if need_theta else None
        like = (
            torch.zeros(n, lay.d, dtype=lay.dtype, device=lay.device)
            if self._per_task
            else (torch.zeros(lay.d, dtype=lay.dtype, device=lay.device))
        )
        self._moments = self._rule.init(like, self.param_groups[0])
        del like
        self._umm_state = [u.init(lay, n) for u in self._umms]
        for k, p in enumerate(self._shared):
            self.state[p] = {
                key: buf[..., lay.offsets[k] : lay.offsets[k] + lay.numels[k]].view(
                    *buf.shape[:-1], *lay.shapes[k]
                )
                for key, buf in self._moments.items()
            }

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Only during construction: PUB's groups are fixed (shared, then one per task)."""
        if getattr(self, "_init_done", False):
            raise InputError("add_param_group: PUB's parameter groups are fixed at construction")
        super().add_param_group(param_group)

    def _make_task_optimizer(self) -> torch.optim.Optimizer | None:
        groups = [g for g in self.param_groups[1:] if g["params"]]
        if not groups:
            return None
        cls = self._rule.torch_class
        return cls([{"params": g["params"], **self._rule.torch_kwargs(g)} for g in groups])

    def _sync_task_optimizer(self) -> None:
        assert self._task_opt is not None
        ours = [g for g in self.param_groups[1:] if g["params"]]
        for mine, theirs in zip(ours, self._task_opt.param_groups):
            theirs.update(self._rule.torch_kwargs(mine))

    @property
    def shared_layout(self) -> FlatLayout:
        """Layout of the flat shared-parameter vector (offsets, shapes)."""
        return self._layout

    @property
    def shared_state(self) -> dict[str, torch.Tensor]:
        """The base rule's moments as flat tensors (``[d]``, or ``[n, d]`` with AdaTask)."""
        return self._moments

    @property
    def task_optimizer(self) -> torch.optim.Optimizer | None:
        """The internal torch optimizer of the task-specific parameters."""
        return self._task_opt

    @property
    def stats(self) -> dict[str, int]:
        """Counters: steps, the balance's solves / reuses / fallbacks / skipped, nonfinite."""
        return {"steps": self._steps, **self.balance.counts, "nonfinite": self._nonfinite}

    @stats.setter
    def stats(self, value: dict[str, int]) -> None:
        self._steps = int(value["steps"])
        self.balance.counts = {k: int(value[k]) for k in self.balance.counts}
        self._nonfinite = int(value["nonfinite"])

    # row-wise internals under their historical names (read by tests and tools)
    @property
    def _rows(self) -> list[torch.Tensor]:
        return self._tables.params

    @property
    def _row_state(self) -> list[dict[str, torch.Tensor]]:
        return self._tables.state

    @property
    def _row_work(self) -> list[dict[str, Any]]:
        return self._tables.work

    # ------------------------------------------------------------------ the step
    def step(self, losses: Sequence[torch.Tensor]) -> None:  # type: ignore[override]
        """One optimisation step from the per-task ``losses`` (n scalar tensors).

        Overwrites ``.grad`` of the task-specific parameters (gradient of ``Σ losses``);
        the shared parameters' ``.grad`` is not used. Frees the losses' graph.
        """
        losses = list(losses)
        if len(losses) != self.n_tasks:
            raise InputError(f"losses: expected {self.n_tasks} task losses, got {len(losses)}")
        for i, L in enumerate(losses):
            if not isinstance(L, torch.Tensor) or L.numel() != 1:
                raise InputError(f"losses[{i}]: expected a scalar tensor")
        if not any(L.requires_grad for L in losses):
            raise InputError(
                "losses: none of the task losses is attached to the autograd graph "
                "(requires_grad=False: computed under torch.no_grad(), or detached); compute "
                "them from the model's outputs with gradients enabled"
            )
        self._calls += 1
        self._steps += 1
        grp = self.param_groups[0]
        lr, wd = float(grp["lr"]), float(grp["weight_decay"])
        self.last = LastStep(step=self._calls)
        t0 = time.perf_counter()
        plan = self._weighted_plan(grp)
        n = self.n_tasks if plan is None else 1
        with torch.enable_grad():
            if plan is not None:
                if not self._reach_checked:
                    only_own_loss(losses, self._task_groups)
                    self._reach_checked = True
                tg, self._tables.grads = weighted_grads(
                    losses, plan[1], self._layout, self._grads[0], self._tables.params,
                    self._task_list, self._owner,
                )  # fmt: skip
            elif self._backward_mode == "loop":
                tg, self._tables.grads = task_grads_loop(
                    losses, self._layout, self._grads, self._tables.params, self._task_list
                )
            else:
                tg = task_grads_batched(losses, self._layout, self._grads, self._task_list)
        if self.grad_reducer is not None:
            if self._tables:
                self._tables.reduce(self.row_reducer, n)
            tg = reduce_task_grads(self.grad_reducer, self._grads[:n], tg, self._task_list)
        t1 = time.perf_counter()
        with torch.no_grad():
            self._do_step(tg, lr, wd, grp, plan)
        self.last.backward_seconds = t1 - t0
        self.last.update_seconds = time.perf_counter() - t1

    def _gram(self) -> np.ndarray:
        """``G = DᵀD`` of all shared parameters: the dense part plus the row-wise tables'."""
        if self._slices is not None:
            return group_grams(self._dirs, self._slices)  # type: ignore[return-value]
        return self._tables.add_gram(gram64(self._dirs), self.n_tasks)

    def _weighted_plan(self, grp: dict[str, Any]) -> tuple[np.ndarray, list[float]] | None:
        """(α, loss weights αᵢ/S) when this step takes the weighted path: no solve due, an α
        known, the newest gradient's weight ≤ ``weighted_tol``; None for the per-task path."""
        if not self._weighted or self.balance.solve_due():
            return None
        alpha = self.balance.current()
        if alpha is None or newest_weight(self._rule, self._t + 1, grp) > self.weighted_tol:
            return None
        lw = loss_weights(alpha)
        if lw is None:
            return None
        alpha, rec = self.balance.weights(self._gram)  # reuses α: G is not formed
        for f in fields(rec):
            setattr(self.last, f.name, getattr(rec, f.name))
        self.last.path = "weighted"
        assert alpha is not None
        return alpha, lw[0]

    def _weights(self) -> np.ndarray | None:
        """α for this step from the balance (None: skip the shared step); fills ``self.last``."""
        alpha, rec = self.balance.weights(self._gram)
        for f in fields(rec):
            setattr(self.last, f.name, getattr(rec, f.name))
        return alpha

    def _do_step(
        self,
        tg: list[torch.Tensor | None],
        lr: float,
        wd: float,
        grp: dict[str, Any],
        plan: tuple[np.ndarray, list[float]] | None = None,
    ) -> None:
        """The shared step from the n task gradients in ``self._grads`` or, with a weighted
        ``plan``, from the one pseudo-task ``ḡ`` in row 0 with weight ``S = Σαᵢ``."""
        lay = self._layout
        theta = self._theta
        n = self.n_tasks if plan is None else 1
        grads, dirs = self._grads[:n], self._dirs[:n]
        if theta is not None:
            lay.flatten_params(theta)
        if wd != 0:
            assert theta is not None
            grads.add_(theta, alpha=wd)  # gᵢ + wd·θ (torch's L2, per task update)
        ctx = UMMContext(lr=lr, layout=lay, theta=theta)
        t = self._t + 1
        work = None if self._work is None else self._work[:n]
        self._rule.directions(self._moments, grads, t, grp, dirs, work)
        if self._tables:
            self._tables.directions(n, t, wd, grp)
        for u_, st in zip(self._umms, self._umm_state):
            u_.on_directions(self._dirs, ctx, st)

        alpha = self._weights() if plan is None else plan[0]
        a_np = alpha if plan is None or alpha is None else np.array([np.sum(alpha)])
        checks: list[torch.Tensor] = [g.sum() for g in tg if g is not None]
        if alpha is not None:
            assert a_np is not None
            a = torch.as_tensor(a_np, dtype=lay.dtype, device=lay.device)
            combine(dirs, a, a_np, self._u, self._slices)  # Dα (one α per group: a_np [k, n])
            for u_, st in zip(self._umms, self._umm_state):
                u_.on_update(self._u, ctx, st)
            checks.append(self._u.sum())
            if not self._per_task:
                combine(grads, a, a_np, self._ghat, self._slices)  # Σαᵢ(gᵢ + wd·θ)
                if wd != 0:  # + (1 − Σα)·wd·θ: the decay counted once
                    decay(self._ghat, theta, wd, a_np, self._slices)
                checks.append(self._ghat.sum())
            self._tables.combine(a, a_np, wd, n, checks)
        elif self.last.status == "nonfinite":
            return self._skip_nonfinite()
        if checks and not bool(torch.isfinite(torch.stack(checks).sum())):
            return self._skip_nonfinite()

        if alpha is not None:
            torch._foreach_add_(self._shared, lay.views(self._u), alpha=-lr)
            self._rule.feed(self._moments, self._grads if self._per_task else self._ghat, grp)
            if self._tables:
                self._tables.apply(float(np.sum(a_np)), t, lr, wd, grp)
            self._t = t
            record_alpha(self.last, alpha, self._slices, self.balance)
        task_before = None
        if self._task_opt is not None:
            if self.diagnostics:
                task_before = [p.detach().clone() for p in self._task_list]
            for p, g in zip(self._task_list, tg):
                p.grad = g
            self._sync_task_optimizer()
            self._task_opt.step()
        if self.diagnostics:
            if alpha is not None and self._per_task:  # the α-weighted gradient, as with shared
                a = torch.as_tensor(alpha, dtype=self._ghat.dtype, device=self._ghat.device)
                torch.mv(self._grads.T, a, out=self._ghat)  # moments
            g = None if alpha is None else self._ghat
            self.last.diagnostics = diagnose(g, self._u, self._task_list, tg, task_before)

    def _skip_nonfinite(self) -> None:
        self._nonfinite += 1
        self.last.status = "nonfinite"
        self.last.action = "nonfinite"
        self.last.alpha = None
        for p in self._task_list:
            p.grad = None
