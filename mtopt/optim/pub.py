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

import copy
import inspect
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.optim.flat import FlatLayout
from mtopt.optim.rules import BaseRule, check_options, make_rule
from mtopt.optim.umm import UMM, AdaTaskUMM, UMMContext, make_umms

ALPHA_SCALES = ("exact", "frobenius")
FALLBACKS = ("previous", "skip")
BACKWARDS = ("loop", "batched")
#: default of ``alpha_scale`` (see the module docstring and docs/pub.md)
DEFAULT_ALPHA_SCALE = "frobenius"
#: columns per fp64 chunk when forming G = DᵀD (fits a core's cache for n ≤ 8)
GRAM_CHUNK = 1 << 14
#: rows per chunk when row-wise tables compute the update shared by their untouched rows
ROW_CHUNK = 1 << 15
#: below this many entries of D, G is formed by broadcasting instead of a BLAS product
SMALL_GRAM = 1 << 16


@dataclass
class LastStep:
    """What the latest :meth:`PUB.step` did (``opt.last``)."""

    step: int = 0
    #: α applied to the shared parameters this step (None: shared step skipped)
    alpha: list[float] | None = None
    #: a solve was attempted this step
    solved: bool = False
    #: solver status of this step's solve; ``reused`` between solves; ``fixed`` (AdaTask);
    #: ``nonfinite`` when the step was skipped for NaN/Inf
    status: str = "none"
    #: residual ``maxᵢ|αᵢ(Gα)ᵢ − 1|`` of the latest solve on the G it solved (scaled if frobenius)
    residual: float | None = None
    solve_seconds: float = 0.0
    gram_seconds: float = 0.0
    #: wall time of this step's backward passes and of everything after them (PUB's own work)
    backward_seconds: float = 0.0
    update_seconds: float = 0.0
    iterations: int = 0
    #: ``applied``, ``fallback-previous``, ``skipped`` (fallback without α) or ``nonfinite``
    action: str = "none"
    #: the Gram matrix the solver saw (n×n, float64), when a solve was attempted
    gram: list[list[float]] | None = None
    #: ‖DᵀD‖_F of the raw Gram matrix (the frobenius scale), when a solve was attempted
    gram_fro: float | None = None
    #: optional diagnostics (``cos_shared``, ``cos_task``, ``diff``), see ``diagnostics=True``
    diagnostics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gram64(D: torch.Tensor, chunk: int = GRAM_CHUNK) -> np.ndarray:
    """``D Dᵀ`` (rows of ``D`` are the task updates) accumulated in float64, chunk by chunk."""
    n, d = D.shape
    if n * d <= SMALL_GRAM:  # no BLAS call (thread start-up dominates tiny products)
        x = D.to(torch.float64)
        return (x.unsqueeze(1) * x.unsqueeze(0)).sum(-1).cpu().numpy()
    if D.dtype == torch.float64:
        return (D @ D.T).cpu().numpy()
    G = torch.zeros(n, n, dtype=torch.float64, device=D.device)
    for s in range(0, d, chunk):
        x = D[:, s : s + chunk].to(torch.float64)
        G.addmm_(x, x.T)
    return G.cpu().numpy()


def _touched_rows(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row indices, values) of the rows of a table gradient that can be nonzero: the indices
    of a sparse (``nn.Embedding(sparse=True)``) gradient, else the nonzero rows of a dense one."""
    if g.is_sparse:
        g = g.coalesce()
        return g.indices()[0], g.values()
    r = (g != 0).any(1).nonzero().squeeze(1)
    return r, g[r]


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _cos(dot: float, na: float, nb: float) -> float | None:
    den = na * nb
    return dot / den if den > 0 and math.isfinite(den) else None


def diff_metric(sim_task: float | None, sim_share: float | None) -> float | None:
    """Diff, Yuan et al. (ICDM 2024) eq. (1): ``2|Sim_task − Sim_share| / |Sim_task + Sim_share|``.

    ``None`` when an input is missing or the denominator is 0.
    """
    if sim_task is None or sim_share is None:
        return None
    den = abs(sim_task + sim_share)
    return 2.0 * abs(sim_task - sim_share) / den if den > 0 else None


class _MultiTaskUpdate(torch.optim.Optimizer):
    """Shared machinery of :class:`PUB` and :class:`AdaTask` (see the module docstring)."""

    _balance: bool = True

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
        row_wise: Iterable[torch.Tensor] = (),
        plain: Iterable[torch.Tensor] = (),
    ) -> None:
        self._rule: BaseRule = make_rule(base, paper_exact)
        opts = check_options(self._rule, base_options)
        eps = self._rule.default_eps if eps is None else eps
        _check_number("lr", lr)
        _check_number("eps", eps)
        if eps <= 0:
            raise InputError(
                "eps: must be > 0 (with eps = 0 a coordinate whose gradient and moments are 0 "
                "gets 0/0 = NaN in the base rule's step); use e.g. 1e-30 to study eps effects"
            )
        _check_number("weight_decay", weight_decay)
        try:
            b1, b2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise InputError(f"betas: expected two numbers, got {betas!r}") from None
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise InputError(f"betas: each must be in [0, 1), got {betas!r}")
        if backward not in BACKWARDS:
            raise InputError(f"backward: must be one of {', '.join(BACKWARDS)}, got {backward!r}")
        if isinstance(task_params, torch.Tensor) or not isinstance(task_params, Sequence):
            raise InputError("task_params: pass a list with one iterable of parameters per task")
        shared = [p for p in shared_params if p.requires_grad]
        tasks = [[p for p in ps if p.requires_grad] for ps in task_params]
        if not tasks:
            raise InputError("task_params: need one entry (possibly empty) per task, got none")
        pl = {id(p) for p in plain}
        if pl:  # out of D: the plain base step on ∇Σᵢ Lᵢ, as the task-specific parameters
            moved = [p for p in shared if id(p) in pl]
            if len(moved) != len(pl):
                raise InputError("plain: every tensor must be one of shared_params")
            shared = [p for p in shared if id(p) not in pl]
            tasks[0] = tasks[0] + moved
        seen: dict[int, str] = {id(p): "shared_params" for p in shared}
        if len(seen) != len(shared):
            raise InputError("shared_params: a parameter is listed twice")
        for i, ps in enumerate(tasks):
            for p in ps:
                where = seen.get(id(p))
                if where is not None:
                    raise InputError(
                        f"task_params[{i}]: a parameter is also in {where}; shared and task "
                        "parameters must be disjoint (take the split from the model)"
                    )
                seen[id(p)] = f"task_params[{i}]"
        self.n_tasks = len(tasks)
        rw = {id(p) for p in row_wise}
        rows = [p for p in shared if id(p) in rw]
        if rows:
            if len(rows) != len(rw):
                raise InputError("row_wise: every tensor must be one of shared_params")
            if umms or backward != "loop" or any(p.dim() != 2 for p in rows):
                raise InputError(
                    "row_wise: needs 2-D tables (embeddings), backward='loop' and no UMM"
                )
            shared = [p for p in shared if id(p) not in rw]
        self._rows: list[torch.Tensor] = rows
        self._layout = FlatLayout(shared, "shared_params")
        self._umms = umms
        self._per_task = any(u.per_task_moments for u in umms)
        self._backward_mode = backward
        self.diagnostics = bool(diagnostics)

        defaults = dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, **opts)
        groups: list[dict[str, Any]] = [{"params": shared + rows, "role": "shared"}]
        groups += [{"params": ps, "role": "task", "task": i} for i, ps in enumerate(tasks)]
        self._init_done = False
        super().__init__(groups, defaults)
        self._init_done = True

        n, lay = self.n_tasks, self._layout
        self._shared = lay.params
        self._task_list = [p for ps in tasks for p in ps]
        self._grads = lay.empty(n)
        self._dirs = lay.empty(n)
        self._work = lay.empty(n) if self._rule.needs_work else None
        self._u = lay.empty()
        self._ghat = lay.empty()
        need_theta = weight_decay != 0 or any(u.needs_params for u in umms)
        self._theta: torch.Tensor | None = lay.empty() if need_theta else None
        like = (
            torch.zeros(n, lay.d, dtype=lay.dtype, device=lay.device)
            if self._per_task
            else (torch.zeros(lay.d, dtype=lay.dtype, device=lay.device))
        )
        self._moments = self._rule.init(like, self.param_groups[0])
        del like
        self._umm_state = [u.init(lay, n) for u in umms]
        for k, p in enumerate(self._shared):
            self.state[p] = {
                key: buf[..., lay.offsets[k] : lay.offsets[k] + lay.numels[k]].view(
                    *buf.shape[:-1], *lay.shapes[k]
                )
                for key, buf in self._moments.items()
            }
        self._task_opt = self._make_task_optimizer()
        #: row-wise tables: full-size moments, per-step work on the touched rows only
        self._row_state = [self._rule.init(torch.zeros_like(p), self.param_groups[0]) for p in rows]
        for p, st in zip(rows, self._row_state):
            self.state[p] = st
        self._row_grads: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        self._row_work: list[dict[str, Any]] = []
        #: multi-process hook (mtopt.distributed): averages, in place, the stacked per-task
        #: gradients [n, d] (one call) and the flat task-parameter gradients, before any use
        self.grad_reducer: Callable[[torch.Tensor], torch.Tensor] | None = None
        #: multi-process hook for the row-wise tables: given, per (task, table), the touched
        #: rows and their gradient rows, returns the union over processes and the averaged
        #: values (mtopt.distributed.DistContext.reduce_rows; an all-gather of touched rows)
        self.row_reducer: (
            Callable[
                [list[tuple[torch.Tensor, torch.Tensor]]],
                list[tuple[torch.Tensor, torch.Tensor]],
            ]
            | None
        ) = None
        self._t = 0  # applied shared updates (bias correction)
        self._calls = 0
        self.last = LastStep()
        self.stats: dict[str, int] = {
            "steps": 0,
            "solves": 0,
            "reuses": 0,
            "fallbacks": 0,
            "skipped": 0,
            "nonfinite": 0,
        }

    # ------------------------------------------------------------------ set-up helpers
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

    # ------------------------------------------------------------------ gradients
    def _task_grads_loop(self, losses: list[torch.Tensor]) -> list[torch.Tensor | None]:
        inputs = self._shared + self._rows + self._task_list
        S = len(self._shared)
        tg: list[torch.Tensor | None] = [None] * len(self._task_list)
        live = [i for i, L in enumerate(losses) if L.requires_grad]
        empty = [(p.new_zeros(0, dtype=torch.long), p.new_zeros(0, p.shape[1])) for p in self._rows]
        self._row_grads = [list(empty) for _ in losses]
        for i, L in enumerate(losses):
            if i not in live:
                self._grads[i].zero_()
                continue
            gs = torch.autograd.grad(L, inputs, retain_graph=i != live[-1], allow_unused=True)
            self._layout.gather(gs[:S], self._grads[i])
            for j, g in enumerate(gs[S : S + len(self._rows)]):
                if g is not None:
                    self._row_grads[i][j] = _touched_rows(g)
            for j, g in enumerate(gs[S + len(self._rows) :]):
                if g is not None:
                    prev = tg[j]
                    tg[j] = g if prev is None else prev + g  # out of place: g may be expanded
        return tg

    def _task_grads_batched(self, losses: list[torch.Tensor]) -> list[torch.Tensor | None]:
        inputs = self._shared + self._task_list
        S = len(self._shared)
        if not any(L.requires_grad for L in losses):
            self._grads.zero_()
            return [None] * len(self._task_list)
        L = torch.stack([x.reshape(()) for x in losses])
        eye = torch.eye(len(losses), dtype=L.dtype, device=L.device)
        gs = torch.autograd.grad(L, inputs, eye, is_grads_batched=True, allow_unused=True)
        self._layout.gather(gs[:S], self._grads)
        return [None if g is None else g.sum(0) for g in gs[S:]]

    def _reduce(self, tg: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """Average the per-task gradients and the task-parameter gradients over processes."""
        assert self.grad_reducer is not None
        if self._rows:
            if self.row_reducer is None:
                raise InputError(
                    "row_wise: with several processes PUB needs a row_reducer hook (the touched "
                    "rows differ per process); train through mtopt.distributed.attach, or leave "
                    "the tables in the dense D"
                )
            K = len(self._rows)
            flat_rows = [pair for per_task in self._row_grads for pair in per_task]
            merged = self.row_reducer(flat_rows)
            self._row_grads = [list(merged[i * K : (i + 1) * K]) for i in range(self.n_tasks)]
        self.grad_reducer(self._grads)
        live = [j for j, g in enumerate(tg) if g is not None]
        if not live:
            return tg
        flat = torch.cat([tg[j].reshape(-1) for j in live])  # type: ignore[union-attr]
        self.grad_reducer(flat)
        out = list(tg)
        off = 0
        for j in live:
            k = self._task_list[j].numel()
            out[j] = flat[off : off + k].view_as(self._task_list[j])
            off += k
        return out

    # ------------------------------------------------------------------ weights
    def _weights(self) -> np.ndarray | None:
        """α for this step (None: skip the shared step); fills ``self.last``."""
        raise NotImplementedError

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
        self._calls += 1
        self.stats["steps"] += 1
        grp = self.param_groups[0]
        lr, wd = float(grp["lr"]), float(grp["weight_decay"])
        self.last = LastStep(step=self._calls)
        t0 = time.perf_counter()
        with torch.enable_grad():
            if self._backward_mode == "loop":
                tg = self._task_grads_loop(losses)
            else:
                tg = self._task_grads_batched(losses)
        if self.grad_reducer is not None:
            tg = self._reduce(tg)
        t1 = time.perf_counter()
        with torch.no_grad():
            self._do_step(tg, lr, wd, grp)
        self.last.backward_seconds = t1 - t0
        self.last.update_seconds = time.perf_counter() - t1

    def _do_step(
        self, tg: list[torch.Tensor | None], lr: float, wd: float, grp: dict[str, Any]
    ) -> None:
        lay = self._layout
        theta = self._theta
        if theta is not None:
            lay.flatten_params(theta)
        if wd != 0:
            assert theta is not None
            self._grads.add_(theta, alpha=wd)  # gᵢ + wd·θ (torch's L2, per task update)
        ctx = UMMContext(lr=lr, layout=lay, theta=theta)
        t = self._t + 1
        self._rule.directions(self._moments, self._grads, t, grp, self._dirs, self._work)
        if self._rows:
            self._row_directions(t, wd, grp)
        for u_, st in zip(self._umms, self._umm_state):
            u_.on_directions(self._dirs, ctx, st)

        alpha = self._weights()
        checks: list[torch.Tensor] = [g.sum() for g in tg if g is not None]
        if alpha is not None:
            a = torch.as_tensor(alpha, dtype=lay.dtype, device=lay.device)
            torch.mv(self._dirs.T, a, out=self._u)
            for u_, st in zip(self._umms, self._umm_state):
                u_.on_update(self._u, ctx, st)
            checks.append(self._u.sum())
            if not self._per_task:
                torch.mv(self._grads.T, a, out=self._ghat)  # Σαᵢ(gᵢ + wd·θ)
                if wd != 0:
                    self._ghat.add_(theta, alpha=wd * (1.0 - float(np.sum(alpha))))
                checks.append(self._ghat.sum())
            for w in self._row_work:
                w["u"] = torch.mv(w["D"].reshape(self.n_tasks, -1).T, a).view_as(w["theta"])
                w["ghat"] = torch.einsum("i,irk->rk", a, w["g"])  # Σαᵢ(gᵢ + wd·θ)
                if wd != 0:
                    w["ghat"].add_(w["theta"], alpha=wd * (1.0 - float(np.sum(alpha))))
                checks += [w["u"].sum(), w["ghat"].sum()]
        elif self.last.status == "nonfinite":
            return self._skip_nonfinite()
        if checks and not bool(torch.isfinite(torch.stack(checks).sum())):
            return self._skip_nonfinite()

        if alpha is not None:
            torch._foreach_add_(self._shared, lay.views(self._u), alpha=-lr)
            self._rule.feed(self._moments, self._grads if self._per_task else self._ghat, grp)
            if self._rows:
                self._row_apply(float(np.sum(alpha)), t, lr, wd, grp)
            self._t = t
            self.last.alpha = [float(x) for x in alpha]
        task_before = None
        if self._task_opt is not None:
            if self.diagnostics:
                task_before = [p.detach().clone() for p in self._task_list]
            for p, g in zip(self._task_list, tg):
                p.grad = g
            self._sync_task_optimizer()
            self._task_opt.step()
        if self.diagnostics:
            self._diagnose(alpha, tg, task_before)

    # ------------------------------------------------------------------ row-wise tables
    def _untouched_u(
        self, k: int, a: int, b: int, t: int, wd: float, grp: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``a:b`` of table ``k``: (``g = wd·θ``, the update ``u`` every task takes there)."""
        p, st = self._rows[k], self._row_state[k]
        g = p.detach()[a:b] * wd
        chunk = {key: buf[a:b] for key, buf in st.items()}
        out = torch.empty_like(g).unsqueeze(0)
        work = torch.empty_like(out) if self._rule.needs_work else None
        self._rule.directions(chunk, g.unsqueeze(0), t, grp, out, work)
        return g, out[0]

    def _row_directions(self, t: int, wd: float, grp: dict[str, Any]) -> None:
        """Per table: touched rows R (union over tasks), their per-task gradients and updates
        ``D_R`` (moments gathered), and ``‖u‖²`` of the one update all tasks share on every
        other row (their gradient there is ``wd·θ`` for every task) — exact, no per-task copy.
        """
        n = self.n_tasks
        self._row_work = []
        for k, p in enumerate(self._rows):
            per = [self._row_grads[i][k] for i in range(n)]
            R = torch.unique(torch.cat([r for r, _ in per]))
            theta = p.detach()[R].clone()
            g = theta.unsqueeze(0).repeat(n, 1, 1).mul_(wd)
            for i, (r, v) in enumerate(per):
                if r.numel():
                    g[i].index_add_(0, torch.searchsorted(R, r), v)
            st = {key: buf[R].clone() for key, buf in self._row_state[k].items()}
            D = torch.empty_like(g)
            work = torch.empty_like(g) if self._rule.needs_work else None
            self._rule.directions(st, g, t, grp, D, work)
            touched = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
            touched[R] = True
            uu = 0.0
            for a in range(0, p.shape[0], ROW_CHUNK):
                b = min(a + ROW_CHUNK, p.shape[0])
                _, u = self._untouched_u(k, a, b, t, wd, grp)
                u[touched[a:b]] = 0
                uu += float(u.to(torch.float64).pow(2).sum())
            self._row_work.append({"R": R, "theta": theta, "g": g, "D": D, "st": st, "uu": uu})

    def _gram(self) -> np.ndarray:
        """``G = DᵀD`` of all shared parameters: the dense part plus, per row-wise table,
        ``D_Rᵀ D_R`` and the constant ``‖u‖²`` of the untouched rows in every entry."""
        G = gram64(self._dirs)
        for w in self._row_work:
            G = G + gram64(w["D"].reshape(self.n_tasks, -1)) + w["uu"]
        return G

    def _row_apply(self, sum_alpha: float, t: int, lr: float, wd: float, grp: dict) -> None:
        """Step and moment feed of the row-wise tables (after the dense ones, same α)."""
        with torch.no_grad():
            for k, (p, w) in enumerate(zip(self._rows, self._row_work)):
                st = self._row_state[k]
                for a in range(0, p.shape[0], ROW_CHUNK):  # untouched rows: (Σα)·u, fed wd·θ
                    b = min(a + ROW_CHUNK, p.shape[0])
                    g, u = self._untouched_u(k, a, b, t, wd, grp)
                    p[a:b].add_(u, alpha=-lr * sum_alpha)
                    self._rule.feed({key: buf[a:b] for key, buf in st.items()}, g, grp)
                R = w["R"]  # touched rows: overwrite with their own update and feed
                p[R] = w["theta"] - lr * w["u"]
                self._rule.feed(w["st"], w["ghat"], grp)
                for key, buf in st.items():
                    buf[R] = w["st"][key]

    def _skip_nonfinite(self) -> None:
        self.stats["nonfinite"] += 1
        self.last.status = "nonfinite"
        self.last.action = "nonfinite"
        self.last.alpha = None
        for p in self._task_list:
            p.grad = None

    def _diagnose(
        self,
        alpha: np.ndarray | None,
        tg: list[torch.Tensor | None],
        task_before: list[torch.Tensor] | None,
    ) -> None:
        """cos(gradient, update) on shared and task parameters and Diff (paper §III, eq. (1))."""
        cs = None
        if alpha is not None:
            g = self._ghat
            if self._per_task:  # the α-weighted gradient, as for PUB with shared moments
                a = torch.as_tensor(alpha, dtype=g.dtype, device=g.device)
                torch.mv(self._grads.T, a, out=g)
            cs = _cos(float(g @ self._u), float(g.norm()), float(self._u.norm()))
        ct = None
        if task_before is not None:
            dot = na = nb = 0.0
            for p, g, b in zip(self._task_list, tg, task_before):
                if g is None:
                    continue
                upd = b - p.detach()  # descent update θ_old − θ_new
                dot += float((g * upd).sum())
                na += float((g * g).sum())
                nb += float((upd * upd).sum())
            ct = _cos(dot, math.sqrt(na), math.sqrt(nb))
        self.last.diagnostics = {"cos_shared": cs, "cos_task": ct, "diff": diff_metric(ct, cs)}

    # ------------------------------------------------------------------ checkpoints
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Everything needed to resume bit for bit: hyperparameters, moments, counters, α."""
        return {
            "format": "mtopt.optim",
            "version": 1,
            "class": type(self).__name__,
            "base": self._rule.name,
            "per_task_moments": self._per_task,
            "param_groups": [
                {**{k: v for k, v in g.items() if k != "params"}, "num_params": len(g["params"])}
                for g in self.param_groups
            ],
            "shared": {
                "t": self._t,
                "calls": self._calls,
                "moments": {k: v.detach().clone() for k, v in self._moments.items()},
                "rows": [{k: v.clone() for k, v in st.items()} for st in self._row_state],
            },
            "umm": [
                {"name": u.name, "state": dict(s)} for u, s in zip(self._umms, self._umm_state)
            ],
            # deep copies: torch's state_dict aliases live tensors, a checkpoint must not
            "task_optimizer": (
                None if self._task_opt is None else copy.deepcopy(self._task_opt.state_dict())
            ),
            "stats": dict(self.stats),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Restore from :meth:`state_dict` (same class, base rule, UMMs and parameter sizes)."""
        sd = state_dict
        if not isinstance(sd, dict) or sd.get("format") != "mtopt.optim":
            raise InputError("state_dict: not an mtopt optimizer checkpoint")
        if sd.get("class") != type(self).__name__ or sd.get("base") != self._rule.name:
            raise InputError(
                f"state_dict: saved by {sd.get('class')}(base={sd.get('base')!r}), "
                f"cannot load into {type(self).__name__}(base={self._rule.name!r})"
            )
        if bool(sd.get("per_task_moments")) != self._per_task:
            raise InputError("state_dict: per-task moments (AdaTask) differ from this optimizer")
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            g["num_params"] != len(mine["params"]) for g, mine in zip(groups, self.param_groups)
        ):
            raise InputError("state_dict: parameter groups do not match this optimizer's")
        saved = sd["shared"]["moments"]
        if set(saved) != set(self._moments):
            raise InputError("state_dict: moment names differ (another base rule?)")
        for k, buf in self._moments.items():
            src = saved[k]
            if tuple(src.shape) != tuple(buf.shape):
                raise InputError(f"state_dict: moment {k!r} has shape {tuple(src.shape)}")
        names = [u["name"] for u in sd["umm"]]
        if names != [u.name for u in self._umms]:
            raise InputError(f"state_dict: UMMs {names} differ from {[u.name for u in self._umms]}")
        for k, buf in self._moments.items():
            buf.copy_(saved[k])
        for g, mine in zip(groups, self.param_groups):
            mine.update({k: v for k, v in g.items() if k != "num_params"})
        rows = sd["shared"].get("rows", [])
        if len(rows) != len(self._rows):
            raise InputError("state_dict: row-wise tables differ from this optimizer's")
        for st, saved_st in zip(self._row_state, rows):
            for k, buf in st.items():
                buf.copy_(saved_st[k])
        self._t = int(sd["shared"]["t"])
        self._calls = int(sd["shared"]["calls"])
        self._umm_state = [dict(u["state"]) for u in sd["umm"]]
        if (sd["task_optimizer"] is None) != (self._task_opt is None):
            raise InputError("state_dict: task-specific parameters differ")
        if self._task_opt is not None:
            self._task_opt.load_state_dict(copy.deepcopy(sd["task_optimizer"]))
        self.stats = dict(sd["stats"])
        self.last = LastStep(step=self._calls)
        self._load_extra_state(sd["extra"])


def _check_number(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name}: must be a finite number ≥ 0, got {value!r}")


def _fixed_alpha(value: Any, n: int) -> np.ndarray:
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


class PUB(_MultiTaskUpdate):
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
    ) -> None:
        from mtopt.registry import registry
        from mtopt.solvers.base import DEFAULT_TOL

        if alpha_scale not in ALPHA_SCALES:
            raise InputError(
                f"alpha_scale: must be one of {', '.join(ALPHA_SCALES)}, got {alpha_scale!r}"
            )
        if fallback not in FALLBACKS:
            raise InputError(f"fallback: must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
        if isinstance(solve_every, bool) or not isinstance(solve_every, int) or solve_every < 1:
            raise InputError(f"solve_every: must be an integer ≥ 1, got {solve_every!r}")
        tol = DEFAULT_TOL if tol is None else tol
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
            raise InputError(f"tol: must be a positive finite number, got {tol!r}")
        entry = registry.entry("solver", solver)
        self.solver = entry.name
        self._solver_warm = _accepts(entry.load(), "alpha0")
        self.solver_options = dict(solver_options or {})
        self.solve_every = solve_every
        self.alpha_scale = alpha_scale
        self.fallback = fallback
        self.tol = float(tol)
        super().__init__(
            shared_params,
            task_params,
            lr=lr,
            base=base,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            umms=make_umms(umm, umm_options),
            paper_exact=paper_exact,
            base_options=base_options,
            backward=backward,
            diagnostics=diagnostics,
            row_wise=row_wise,
            plain=plain,
        )
        self._fixed: np.ndarray | None = None
        if fixed_alpha is not None:
            self._fixed = _fixed_alpha(fixed_alpha, self.n_tasks)
        self._alpha: np.ndarray | None = None
        self._since_solve = solve_every  # so that the first step solves
        self._last_residual: float | None = None

    def _weights(self) -> np.ndarray | None:
        from mtopt.solvers import solve

        last = self.last
        if self._fixed is not None:
            last.status = "fixed"
            last.action = "applied"
            return self._fixed
        self._since_solve += 1
        due = self._alpha is None or self._since_solve > self.solve_every
        if not due:
            self.stats["reuses"] += 1
            last.status = "reused"
            last.residual = self._last_residual
            last.action = "applied"
            return self._alpha
        self._since_solve = 1
        t0 = time.perf_counter()
        G = self._gram()
        last.gram_seconds = time.perf_counter() - t0
        last.solved = True
        if not np.all(np.isfinite(G)):
            last.status = "nonfinite"
            return None
        fro = float(np.linalg.norm(G))
        last.gram_fro = fro
        if self.alpha_scale == "frobenius" and fro > 0:
            G = G / fro
        last.gram = G.tolist()
        opts = dict(self.solver_options)
        if self._solver_warm and self._alpha is not None:
            opts["alpha0"] = self._alpha.copy()
        res = solve(G, solver=self.solver, tol=self.tol, validate="light", **opts)
        self.stats["solves"] += 1
        last.status = res.status
        last.residual = res.residual
        last.solve_seconds = res.seconds
        last.iterations = res.iterations
        if res.ok:
            assert res.alpha is not None
            self._alpha = np.asarray(res.alpha, dtype=np.float64)
            self._last_residual = res.residual
            last.action = "applied"
            return self._alpha
        self.stats["fallbacks"] += 1
        if self.fallback == "previous" and self._alpha is not None:
            last.action = "fallback-previous"
            return self._alpha
        self.stats["skipped"] += 1
        last.action = "skipped"
        return None

    def _extra_state(self) -> dict[str, Any]:
        return {
            "alpha": None if self._alpha is None else [float(x) for x in self._alpha],
            "since_solve": self._since_solve,
            "last_residual": self._last_residual,
            "solver": self.solver,
            "alpha_scale": self.alpha_scale,
            "solve_every": self.solve_every,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        a = state["alpha"]
        self._alpha = None if a is None else np.asarray(a, dtype=np.float64)
        self._since_solve = int(state["since_solve"])
        self._last_residual = state["last_residual"]


class AdaTask(_MultiTaskUpdate):
    """AdaTask (Yang et al., "AdaTask: A Task-Aware Adaptive Learning Rate Approach to
    Multi-Task Learning", AAAI 2023) as a loss-summing optimizer, the baseline row of the PUB
    paper: shared parameters move by ``−lr·Σᵢ Δθᵢ`` where ``Δθᵢ`` is the base rule's update
    from task i's own accumulated moments; task-specific parameters take the plain base step
    on ``∇Σᵢ Lᵢ``. Same API as :class:`PUB` (``opt.step(losses)``), no α solve.
    """

    _balance = False

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
        umms = [u for u in make_umms(umm) if not isinstance(u, AdaTaskUMM)]
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
        )
        self._ones = np.ones(self.n_tasks)

    def _weights(self) -> np.ndarray | None:
        self.last.status = "fixed"
        self.last.action = "applied"
        return self._ones
