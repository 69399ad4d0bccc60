"""Multi-process data-parallel training on ``torch.distributed`` (see docs/scaling.md).

Launch with ``torchrun --nproc-per-node N -m mtopt train recipe.yaml``: torchrun sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and
initialises a process group (gloo on CPU, nccl on CUDA) with a timeout, so that a crashed rank
makes the others fail with a clear :class:`~mtopt.errors.RunError` instead of hanging.

Scheme (the same for every method, no ``DistributedDataParallel`` wrapper):

* **data**: every rank iterates the *same* seeded global batches and keeps its contiguous slice
  of each (:func:`shard_batch`); a final global batch with fewer rows than processes is dropped
  (on every rank). N processes at ``batch_size: B`` train on exactly the batches one process at
  ``batch_size: B`` trains on.
* **losses**: each rank's task losses are rescaled by ``b_r·W/B`` (so that the rank mean is the
  global-batch mean even for uneven slices) and their *values* replaced by the all-reduced global
  means (:meth:`DistContext.globalize_losses`, one all-reduce of n numbers), keeping the local
  graph. Methods whose state depends on loss values (DWA, FAMO, BanditMTL, IMTL-L, GradNorm's
  loss ratios) therefore see the same numbers on every rank.
* **gradients**: averaged over ranks before they are used:

  - update-level methods (PUB, AdaTask): the optimizer's ``grad_reducer`` hook averages the
    stacked per-task gradient buffer ``[n, d]`` (one all-reduce) and the task-parameter gradients
    before the per-task updates, G and α are formed — α is solved on every rank from the same G;
  - gradient-level methods: their ``grad_reducer`` hook averages the per-task Jacobian ``J``
    (and the task-parameter rows ``T``) right after the per-task backward passes, before the
    aggregator sees them;
  - everything (loss-level methods, and the steps of gradient-level methods that do not go
    through ``J``): a step pre-hook on every torch optimizer of the method averages ``.grad``
    (one flat all-reduce), unless the method's gradients were already reduced this step.

So parameters stay bitwise identical across ranks, and equal (to rounding) to one process trained
on the same global batches. The initial parameters are broadcast from rank 0.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtopt.errors import InputError, RunError

#: default collective timeout (seconds); evaluation runs on rank 0 while the others wait
DEFAULT_TIMEOUT = 1800.0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"WORLD_SIZE={raw!r}: expected an integer (set by torchrun)") from None


class _WithValue(torch.autograd.Function):
    """Forward: ``value`` (exactly); backward: the gradient flows to ``x`` unchanged."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return value.detach().clone().reshape(x.shape)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return g, None


@dataclass
class DistContext:
    """Rank, world size and the collectives the trainer and the methods use.

    ``world_size == 1`` is the single-process case: every collective is the identity.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    owns_group: bool = False
    #: the step counter shown in error messages
    step: int = 0
    #: gradients of the current step already averaged (by a method hook)
    reduced: bool = field(default=False, repr=False)
    #: number of all-reduce calls (for tests and benchmarks)
    calls: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---------------------------------------------------------------- collectives
    def _collective(self, what: str, fn: Callable[[], Any]) -> Any:
        self.calls += 1
        try:
            return fn()
        except (RuntimeError, ValueError) as exc:  # gloo/nccl report peers' failures this way
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunError(
                f"rank {self.rank}/{self.world_size}: {what} failed at step {self.step} — another "
                f"process probably crashed or timed out (timeout {self.timeout:g} s); see its "
                f"error above ({first[:200]})"
            ) from None

    def all_reduce_mean_(self, t: torch.Tensor) -> torch.Tensor:
        """Average ``t`` over ranks in place (sum, then divide by the world size)."""
        if not self.enabled or t.numel() == 0:
            return t
        import torch.distributed as dist

        self._collective("all_reduce", lambda: dist.all_reduce(t, op=dist.ReduceOp.SUM))
        t.div_(self.world_size)
        return t

    def all_reduce_sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks in place."""
        if not self.enabled:
            return t
        import torch.distributed as dist

        self._collective("all_reduce", lambda: dist.all_reduce(t, op=dist.ReduceOp.SUM))
        return t

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj]
        self._collective("broadcast", lambda: dist.broadcast_object_list(box, src=src))
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            import torch.distributed as dist

            self._collective("barrier", lambda: dist.barrier())

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on rank 0 only; its InputError / RunError is raised on every rank."""
        err: tuple[str, str] | None = None
        out = None
        if self.is_main:
            try:
                out = fn()
            except (InputError, RunError) as exc:
                err = (type(exc).__name__, str(exc))
        err = self.broadcast_object(err)
        if err is not None:
            cls = InputError if err[0] == "InputError" else RunError
            raise cls(err[1] if self.is_main else f"(rank 0) {err[1]}")
        return out

    # ---------------------------------------------------------------- training helpers
    def grad_reducer(self, t: torch.Tensor) -> torch.Tensor:
        """The hook given to methods: average ``t`` in place, mark this step as reduced."""
        self.reduced = True
        return self.all_reduce_mean_(t)

    def reduce_rows(
        self, parts: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Average row-sparse gradients over ranks: ``parts`` holds, per (task, table),
        ``(rows, values)`` with ``rows`` the unique touched row indices ``[m]`` and
        ``values`` their gradient rows ``[m, k]``. Returns, per part, the union of every rank's
        rows (sorted) and the rank-averaged values there (a rank that did not touch a row
        contributes 0). The same on every rank, bitwise: every rank coalesces the same gathered
        data in rank order.

        Three all-gathers per call whatever the number of parts: the row counts, the indices
        and the values (flattened, padded to the largest rank's total). Memory and traffic are
        O(W · touched rows), never O(table size).
        """
        out = [(r, v) for r, v in parts]
        if not self.enabled or not parts:
            return out
        import torch.distributed as dist

        W = self.world_size
        dev = parts[0][0].device
        vdtype = parts[0][1].dtype
        if any(v.dtype != vdtype for _, v in parts):
            vdtype = torch.float64  # exact transport of any float dtype; cast back per part
        widths = [int(v.shape[1]) for _, v in parts]
        counts = torch.tensor([int(r.numel()) for r, _ in parts], dtype=torch.long, device=dev)
        gathered = [torch.empty_like(counts) for _ in range(W)]
        self._collective("all_gather", lambda: dist.all_gather(gathered, counts))
        per_rank = torch.stack(gathered).cpu()  # [W, P]
        n_idx = per_rank.sum(1)
        n_val = (per_rank * torch.tensor(widths, dtype=torch.long)).sum(1)
        mi, mv = int(n_idx.max()), int(n_val.max())
        idx = torch.zeros(mi, dtype=torch.long, device=dev)
        val = torch.zeros(mv, dtype=vdtype, device=dev)
        cat_i = torch.cat([r.reshape(-1).to(torch.long) for r, _ in parts])
        cat_v = torch.cat([v.reshape(-1).to(vdtype) for _, v in parts])
        idx[: cat_i.numel()] = cat_i
        val[: cat_v.numel()] = cat_v
        all_i = [torch.empty_like(idx) for _ in range(W)]
        all_v = [torch.empty_like(val) for _ in range(W)]
        self._collective("all_gather", lambda: dist.all_gather(all_i, idx))
        self._collective("all_gather", lambda: dist.all_gather(all_v, val))
        pieces: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in parts]
        for w in range(W):
            oi = ov = 0
            for p, k in enumerate(widths):
                m = int(per_rank[w, p])
                pieces[p].append((all_i[w][oi : oi + m], all_v[w][ov : ov + m * k].view(m, k)))
                oi, ov = oi + m, ov + m * k
        for p, (r0, v0) in enumerate(parts):
            uniq = torch.unique(torch.cat([r for r, _ in pieces[p]]), sorted=True)
            acc = torch.zeros(uniq.numel(), widths[p], dtype=vdtype, device=dev)
            for r, v in pieces[p]:  # rank by rank: no index repeats within one index_add_,
                acc.index_add_(0, torch.searchsorted(uniq, r), v)  # so deterministic on CUDA
            out[p] = (uniq.to(r0.dtype), acc.div_(W).to(v0.dtype))
        return out

    def reduce_grads_(self, params: Sequence[torch.Tensor]) -> None:
        """Average ``.grad`` of ``params`` (those that have one) with one flat all-reduce."""
        ps = [p for p in params if p.grad is not None]
        if not self.enabled or not ps:
            return
        if any(p.grad.is_sparse for p in ps):
            raise RunError("distributed training does not support sparse gradients")
        buf = torch.cat([p.grad.reshape(-1) for p in ps])
        self.all_reduce_mean_(buf)
        off = 0
        for p in ps:
            k = p.grad.numel()
            p.grad.copy_(buf[off : off + k].view_as(p.grad))
            off += k

    def globalize_losses(
        self, losses: Sequence[torch.Tensor], local_rows: int, global_rows: int
    ) -> list[torch.Tensor]:
        """Losses whose values are the global-batch means and whose gradients are the local
        ones scaled by ``local_rows·W/global_rows`` (their rank average is the global gradient).
        """
        if not self.enabled:
            return list(losses)
        scale = local_rows * self.world_size / global_rows
        ls = [x.reshape(()) * scale if scale != 1.0 else x.reshape(()) for x in losses]
        vals = torch.stack([x.detach() for x in ls]).to(torch.float64)
        self.all_reduce_mean_(vals)
        return [_WithValue.apply(x, v.to(x.dtype)) for x, v in zip(ls, vals)]

    def broadcast_module_(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if not self.enabled:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                self._collective("broadcast", lambda t=t: dist.broadcast(t.data, src=0))

    def check_identical(self, module: torch.nn.Module, what: str = "parameters") -> None:
        """Raise :class:`RunError` if ``module``'s parameters differ between ranks (compares a
        float64 fingerprint with one MIN and one MAX all-reduce)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        with torch.no_grad():
            ps = [p.detach().to(torch.float64) for p in module.parameters()]
            fp = torch.stack(
                [sum(p.sum() for p in ps), sum(p.abs().sum() for p in ps)]  # type: ignore[misc]
            ).cpu()
        lo, hi = fp.clone(), fp.clone()
        self._collective("all_reduce", lambda: dist.all_reduce(lo, op=dist.ReduceOp.MIN))
        self._collective("all_reduce", lambda: dist.all_reduce(hi, op=dist.ReduceOp.MAX))
        if not torch.equal(lo, hi):
            raise RunError(
                f"step {self.step}: the {what} differ between processes (the method keeps state "
                "computed from each process's own data); this method cannot be trained with "
                "several processes"
            )

    def close(self) -> None:
        """Destroy the process group if :func:`setup` created it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False


def shard_batch(batch: dict[str, Any], rank: int, world_size: int) -> dict[str, Any] | None:
    """Rank ``rank``'s contiguous slice of a global batch (``None``: fewer rows than ranks)."""
    rows = int(batch["labels"].shape[0])
    if world_size == 1:
        return batch
    if rows < world_size:
        return None
    bounds = [rows * r // world_size for r in range(world_size + 1)]
    lo, hi = bounds[rank], bounds[rank + 1]
    out: dict[str, Any] = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == rows:
            out[k] = v[lo:hi]
        else:
            out[k] = v
    return out


def setup(device: str = "cpu", timeout: float = DEFAULT_TIMEOUT) -> DistContext:
    """A :class:`DistContext` from the environment; initialises the process group if needed.

    ``WORLD_SIZE`` unset or 1: single process (nothing initialised). Otherwise gloo on CPU,
    nccl on CUDA (each process on ``cuda:LOCAL_RANK``), with ``timeout`` seconds per collective.
    """
    import torch.distributed as dist

    world = env_world_size()
    if world <= 1 and not dist.is_initialized():
        return DistContext(timeout=timeout)
    if dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=str(dist.get_backend()),
            timeout=timeout,
        )
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise InputError(
                f"WORLD_SIZE={world} but {key} is not set; launch with torchrun "
                "--nproc-per-node N -m mtopt train RECIPE"
            )
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=timeout),
        )
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(
            f"rank {rank}/{world}: could not join the process group ({backend}, "
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}) within "
            f"{timeout:g} s: {first[:200]}"
        ) from None
    return DistContext(
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        backend=backend,
        timeout=timeout,
        owns_group=True,
    )


def _torch_optimizers(method: Any) -> list[torch.optim.Optimizer]:
    out: list[torch.optim.Optimizer] = []
    for v in vars(method).values():
        if isinstance(v, torch.optim.Optimizer) and all(v is not o for o in out):
            out.append(v)
    return out


def attach(method: Any, ctx: DistContext) -> str:
    """Make ``method`` average its gradients over ranks (see the module docstring).

    Returns how: ``"update-level"``, ``"gradient-level"`` or ``"loss-level"``.
    """
    if not ctx.enabled:
        return "single"
    if getattr(method, "router", None):
        raise RunError(
            f"method {type(method).__name__}: its gradient router reads each process's own "
            "gradients before they are averaged; it cannot be trained with several processes"
        )
    opt = getattr(method, "opt", None)
    if opt is not None and hasattr(opt, "grad_reducer"):  # PUB / AdaTask
        opt.grad_reducer = ctx.grad_reducer
        if hasattr(opt, "row_reducer"):  # row-wise embedding tables: all-gather touched rows
            opt.row_reducer = ctx.reduce_rows
        return "update-level"
    from mtopt.optim.multitask import MultiTaskUpdate

    if isinstance(opt, MultiTaskUpdate):  # an mtopt.optim without the hook
        raise RunError(
            f"method {type(method).__name__}: this version of mtopt.optim.PUB has no "
            "grad_reducer hook; it cannot be trained with several processes"
        )
    kind = "loss-level"
    if hasattr(method, "grad_reducer"):  # GradientMethod
        method.grad_reducer = ctx.grad_reducer
        kind = "gradient-level"
    opts = _torch_optimizers(method)
    if not opts:
        raise RunError(
            f"method {type(method).__name__}: no torch optimizer or grad_reducer hook found; "
            "it cannot be trained with several processes"
        )
    for o in opts:

        def pre_hook(o_: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if ctx.reduced:  # this step's gradients came from reduced per-task gradients
                return
            ctx.reduce_grads_([p for g in o_.param_groups for p in g["params"]])

        o.register_step_pre_hook(pre_hook)
    return kind
