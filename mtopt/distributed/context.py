"""The per-process distributed context: rank, world size and the collectives (all-reduce,
all-gather, broadcast, barrier) the trainer and the methods use, each of which turns a peer's
failure into a :class:`~mtopt.errors.RunError` (see :mod:`mtopt.distributed`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mtopt.errors import InputError, RunError

#: default collective timeout (seconds); evaluation runs on rank 0 while the others wait
DEFAULT_TIMEOUT = 1800.0


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
