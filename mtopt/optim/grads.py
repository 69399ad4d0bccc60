"""Per-task gradients of the shared parameters (Yuan, Cai & Dong, ICDM 2024, Algorithm 1
line 3, ``gᵢ = ∇θ Lᵢ``), with the task-specific parameters' gradient of ``Σᵢ Lᵢ`` from the same
backward passes, and their average over processes.

Two modes: ``"loop"`` (one ``autograd.grad`` per task, graph retained until the last live
loss; measured faster on CPU, docs/pub.md) and ``"batched"`` (one ``is_grads_batched`` pass).
A parameter task i does not reach gets ``gᵢ = 0``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mtopt.optim.flat import FlatLayout

BACKWARDS = ("loop", "batched")

#: one table's touched rows of one task: (row indices, gradient rows)
Rows = tuple[torch.Tensor, torch.Tensor]


def touched_rows(g: torch.Tensor) -> Rows:
    """(row indices, values) of the rows of a table gradient that can be nonzero: the indices
    of a sparse (``nn.Embedding(sparse=True)``) gradient, else the nonzero rows of a dense one."""
    if g.is_sparse:
        g = g.coalesce()
        return g.indices()[0], g.values()
    r = (g != 0).any(1).nonzero().squeeze(1)
    return r, g[r]


def task_grads_loop(
    losses: list[torch.Tensor],
    layout: FlatLayout,
    out: torch.Tensor,
    tables: list[torch.Tensor],
    task_params: list[torch.Tensor],
) -> tuple[list[torch.Tensor | None], list[list[Rows]]]:
    """One backward per task: ``gᵢ`` of the flat shared parameters into ``out[i]``.

    Returns the task parameters' gradients of ``Σᵢ Lᵢ`` (None: unreached) and, per task and
    row-wise table, its touched rows (:func:`touched_rows`; empty when unreached).
    """
    shared = layout.params
    inputs = shared + tables + task_params
    S = len(shared)
    tg: list[torch.Tensor | None] = [None] * len(task_params)
    live = [i for i, L in enumerate(losses) if L.requires_grad]
    empty = [(p.new_zeros(0, dtype=torch.long), p.new_zeros(0, p.shape[1])) for p in tables]
    row_grads = [list(empty) for _ in losses]
    for i, L in enumerate(losses):
        if i not in live:
            out[i].zero_()
            continue
        gs = torch.autograd.grad(L, inputs, retain_graph=i != live[-1], allow_unused=True)
        layout.gather(gs[:S], out[i])
        for j, g in enumerate(gs[S : S + len(tables)]):
            if g is not None:
                row_grads[i][j] = touched_rows(g)
        for j, g in enumerate(gs[S + len(tables) :]):
            if g is not None:
                prev = tg[j]
                tg[j] = g if prev is None else prev + g  # out of place: g may be expanded
    return tg, row_grads


def task_grads_batched(
    losses: list[torch.Tensor],
    layout: FlatLayout,
    out: torch.Tensor,
    task_params: list[torch.Tensor],
) -> list[torch.Tensor | None]:
    """One ``is_grads_batched`` backward: all ``gᵢ`` into ``out`` (``[n, d]``) at once."""
    inputs = layout.params + task_params
    S = len(layout.params)
    if not any(L.requires_grad for L in losses):
        out.zero_()
        return [None] * len(task_params)
    L = torch.stack([x.reshape(()) for x in losses])
    eye = torch.eye(len(losses), dtype=L.dtype, device=L.device)
    gs = torch.autograd.grad(L, inputs, eye, is_grads_batched=True, allow_unused=True)
    layout.gather(gs[:S], out)
    return [None if g is None else g.sum(0) for g in gs[S:]]


def reduce_task_grads(
    reducer: Callable[[torch.Tensor], torch.Tensor],
    grads: torch.Tensor,
    tg: list[torch.Tensor | None],
    task_params: list[torch.Tensor],
) -> list[torch.Tensor | None]:
    """Average, in place over processes, the stacked ``gᵢ`` (one call) and then the task
    parameters' gradients (one flat call); returns the latter as views of that flat buffer."""
    reducer(grads)
    live = [j for j, g in enumerate(tg) if g is not None]
    if not live:
        return tg
    flat = torch.cat([tg[j].reshape(-1) for j in live])  # type: ignore[union-attr]
    reducer(flat)
    out = list(tg)
    off = 0
    for j in live:
        k = task_params[j].numel()
        out[j] = flat[off : off + k].view_as(task_params[j])
        off += k
    return out
