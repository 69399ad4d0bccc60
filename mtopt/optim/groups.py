"""Per-group balancing: one Gram and one α per group of shared parameters (issue #17, item 2).

Yuan, Cai & Dong, ICDM 2024, Algorithm 1 balances all shared parameters with one α from
``G = DᵀD``. With ``groups`` the shared vector θ is split into k groups (per expert, per layer,
embeddings vs dense trunk); group g gets its own ``G_g = D_gᵀD_g`` (the rows of D restricted to
its coordinates), its own α_g from the same weighting and policy (:class:`Balance`: schedule,
scale, fallback, warm start), and moves by ``−lr·D_g α_g``; the moments are fed
``Σᵢ α_{g,i} gᵢ`` on its coordinates. ``G = Σ_g G_g``, so the one-group case is Algorithm 1;
it runs the very same operations (one slice ``[0, d)``), bit for bit.

Groups are lists of shared tensors (the caller decides: :class:`mtopt.methods.pub.PUBMethod`
builds ``embeddings-vs-trunk`` from the model's embedding modules), or ``"layer"``: one group
per shared tensor. Refused (an :class:`~mtopt.errors.InputError` naming ``groups``) with
row-wise tables, ``between_solves="weighted"`` and AdaTask with diagnostics; a step whose
groups do not all give an α skips the shared step (counted by each group's fallback).
``last.group_solve_seconds`` holds each group's solve time; ``last.solve_seconds`` their sum
(the per-step solve cost).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.optim.balance import Balance, BalanceRecord, gram64
from mtopt.optim.flat import FlatLayout

Slices = list[tuple[int, int]]


def group_slices(groups: Any, layout: FlatLayout) -> list[Slices]:
    """Each group's coordinate ranges in the flat shared vector (adjacent ranges merged).

    ``groups``: ``"layer"`` (one group per shared tensor) or a sequence of sequences of shared
    tensors that covers every shared tensor exactly once."""
    params = layout.params
    if isinstance(groups, str):
        if groups != "layer":
            raise InputError(
                f"groups: 'layer' or lists of shared tensors (the method also knows "
                f"'embeddings-vs-trunk'), got {groups!r}"
            )
        lists: list[list[int]] = [[k] for k in range(len(params))]
    else:
        index = {id(p): k for k, p in enumerate(params)}
        lists, seen = [], set()
        for gi, grp in enumerate(groups):
            ks = []
            for p in grp:
                k = index.get(id(p))
                if k is None or k in seen:
                    raise InputError(
                        f"groups[{gi}]: holds a tensor that is not a shared parameter in D "
                        "or is in another group too"
                    )
                seen.add(k)
                ks.append(k)
            if ks:
                lists.append(sorted(ks))
        if len(seen) != len(params):
            raise InputError(
                f"groups: cover {len(seen)} of the {len(params)} shared tensors in D; every "
                "shared tensor must be in exactly one group"
            )
    out: list[Slices] = []
    for ks in lists:
        sl: Slices = []
        for k in ks:
            s, e = layout.offsets[k], layout.offsets[k] + layout.numels[k]
            if sl and sl[-1][1] == s:
                sl[-1] = (sl[-1][0], e)
            else:
                sl.append((s, e))
        out.append(sl)
    return out


def group_grams(dirs: torch.Tensor, slices: list[Slices]) -> list[np.ndarray]:
    """``G_g = Σ`` over the group's ranges of :func:`gram64` of D's columns there."""
    out = []
    for sl in slices:
        G = gram64(dirs[:, sl[0][0] : sl[0][1]])
        for s, e in sl[1:]:
            G = G + gram64(dirs[:, s:e])
        out.append(G)
    return out


def mix(rows: torch.Tensor, alpha: np.ndarray, out: torch.Tensor, slices: list[Slices]) -> None:
    """``out = Σᵢ α_{g,i} rowsᵢ`` on each group's ranges (``alpha``: ``[k, n]``)."""
    for a_g, sl in zip(alpha, slices):
        a = torch.as_tensor(a_g, dtype=rows.dtype, device=rows.device)
        for s, e in sl:
            torch.mv(rows[:, s:e].T, a, out=out[s:e])


def combine(
    rows: torch.Tensor,
    a: torch.Tensor,
    alpha: np.ndarray,
    out: torch.Tensor,
    slices: list[Slices] | None,
) -> None:
    """``out = rowsᵀα``: one α for all of θ (``a``, one ``torch.mv``), or one per group."""
    if slices is None:
        torch.mv(rows.T, a, out=out)
    else:
        mix(rows, alpha, out, slices)


def record_alpha(last: Any, alpha: np.ndarray, slices: list[Slices] | None, balance: Any) -> None:
    """``last.alpha``: the α applied or, per group, the groups' α weighted by their sizes (each
    group's in ``last.group_alpha``, its solve time in ``last.group_solve_seconds``)."""
    if slices is None:
        last.alpha = [float(x) for x in alpha]
        return
    size = np.array([sum(e - s for s, e in sl) for sl in slices], dtype=np.float64)
    last.alpha = [float(x) for x in (size / size.sum()) @ alpha]
    last.group_alpha = alpha.tolist()
    last.group_solve_seconds = list(balance.group_solve_seconds)


def decay(
    ghat: torch.Tensor,
    theta: torch.Tensor,
    wd: float,
    alpha: np.ndarray,
    slices: list[Slices] | None,
) -> None:
    """The moments' weight decay counted once (per group): ``ĝ += (1 − Σᵢαᵢ)·wd·θ``."""
    if slices is None:
        ghat.add_(theta, alpha=wd * (1.0 - float(np.sum(alpha))))
        return
    for a_g, sl in zip(alpha, slices):
        for s, e in sl:
            ghat[s:e].add_(theta[s:e], alpha=wd * (1.0 - float(np.sum(a_g))))


class GroupedBalance:
    """k :class:`Balance` objects, one per group, behind Balance's interface (α: ``[k, n]``)."""

    def __init__(self, make: Callable[[], Balance], slices: list[Slices]) -> None:
        self.slices = slices
        self.groups = [make() for _ in slices]
        first = self.groups[0]
        self.policy, self.weighting, self.fixed = first.policy, first.weighting, first.fixed
        self.solver_options = first.solver_options

    @property
    def solver_name(self) -> str:
        return self.groups[0].solver_name

    @property
    def counts(self) -> dict[str, int]:
        tot = dict.fromkeys(self.groups[0].counts, 0)
        for b in self.groups:
            for k, v in b.counts.items():
                tot[k] += v
        return tot

    @counts.setter
    def counts(self, value: dict[str, int]) -> None:
        self.groups[0].counts = dict(value)
        for b in self.groups[1:]:
            b.counts = dict.fromkeys(value, 0)

    def solve_due(self) -> bool:
        return self.groups[0].solve_due()

    def current(self) -> np.ndarray | None:
        cur = [b.current() for b in self.groups]
        return None if any(c is None for c in cur) else np.stack(cur)  # type: ignore[arg-type]

    def weights(
        self, grams: Callable[[], Sequence[np.ndarray]]
    ) -> tuple[np.ndarray | None, BalanceRecord]:
        cache: list[Sequence[np.ndarray]] = []

        def gram_of(g: int) -> np.ndarray:
            if not cache:
                cache.append(grams())
            return cache[0][g]

        out = [b.weights(lambda g=g: gram_of(g)) for g, b in enumerate(self.groups)]
        recs = [r for _, r in out]
        rec = BalanceRecord(
            solved=any(r.solved for r in recs),
            status=next((r.status for r in recs if r.status not in ("ok", "reused", "fixed")),
                        recs[0].status),
            residual=None if any(r.residual is None for r in recs)
            else max(float(r.residual) for r in recs),  # type: ignore[arg-type]
            solve_seconds=sum(r.solve_seconds for r in recs),
            gram_seconds=sum(r.gram_seconds for r in recs),
            iterations=sum(r.iterations for r in recs),
            action=next((r.action for r in recs if r.action != "applied"), "applied"),
        )  # fmt: skip
        self.group_solve_seconds = [r.solve_seconds for r in recs]
        if any(a is None for a, _ in out):
            rec.action = "skipped" if rec.status != "nonfinite" else "none"
            return None, rec
        return np.stack([a for a, _ in out]), rec  # type: ignore[misc]

    def state_dict(self) -> dict[str, Any]:
        return {"groups": [b.state_dict() for b in self.groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["groups"]) != len(self.groups):
            raise InputError(
                f"groups: the checkpoint has {len(state['groups'])} groups, this optimizer "
                f"{len(self.groups)}"
            )
        for b, s in zip(self.groups, state["groups"]):
            b.load_state_dict(s)


__all__ = ["GroupedBalance", "decay", "group_grams", "group_slices", "mix"]
