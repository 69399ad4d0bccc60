"""Row-wise shared tables (embeddings) in PUB's ``D`` without n dense copies of them.

Yuan, Cai & Dong, ICDM 2024, Algorithm 1 on a table whose rows a batch mostly does not touch
(docs/scaling.md): per table, the touched rows ``R`` (union over tasks) get per-task gradients
and updates ``D_R`` with their moments gathered; every other row has gradient ``wd·θ`` for every
task, hence one update ``u`` all tasks share there. So ``DᵀD`` gains ``D_Rᵀ D_R`` plus ``‖u‖²``
in every entry, and the untouched rows move by ``(Σαᵢ)·u`` — equal to dense PUB. Moments are
full size; the per-step work is on the touched rows plus a chunked pass for ``u``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mtopt.errors import InputError
from mtopt.optim.balance import gram64
from mtopt.optim.grads import Rows
from mtopt.optim.rules import BaseRule

#: rows per chunk when row-wise tables compute the update shared by their untouched rows
ROW_CHUNK = 1 << 15

#: multi-process hook: per (task, table) touched rows and gradient rows → the union over
#: processes and the averaged values (mtopt.distributed.DistContext.reduce_rows)
RowReducer = Callable[[list[Rows]], list[Rows]]


class RowTables:
    """The row-wise tables of one optimizer, their full-size moments and this step's work.

    ``grads[i][k]``: task i's touched rows of table k (set by the backward passes);
    ``work[k]``: this step's ``R``, ``theta``, ``g``, ``D``, ``st`` (gathered moments), ``uu``
    (``‖u‖²`` of the untouched rows) and, once α is known, ``u`` and ``ghat``.
    """

    def __init__(self, params: list[torch.Tensor], rule: BaseRule, group: dict[str, Any]):
        self.params = params
        self.rule = rule
        self.state = [rule.init(torch.zeros_like(p), group) for p in params]
        self.grads: list[list[Rows]] = []
        self.work: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.params)

    def reduce(self, reducer: RowReducer | None, n_tasks: int) -> None:
        """Replace :attr:`grads` by their union / average over processes."""
        if reducer is None:
            raise InputError(
                "row_wise: with several processes PUB needs a row_reducer hook (the touched "
                "rows differ per process); train through mtopt.distributed.attach, or leave "
                "the tables in the dense D"
            )
        K = len(self.params)
        flat_rows = [pair for per_task in self.grads for pair in per_task]
        merged = reducer(flat_rows)
        self.grads = [list(merged[i * K : (i + 1) * K]) for i in range(n_tasks)]

    def _untouched_u(
        self, k: int, a: int, b: int, t: int, wd: float, grp: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``a:b`` of table ``k``: (``g = wd·θ``, the update ``u`` every task takes there)."""
        p, st = self.params[k], self.state[k]
        g = p.detach()[a:b] * wd
        chunk = {key: buf[a:b] for key, buf in st.items()}
        out = torch.empty_like(g).unsqueeze(0)
        work = torch.empty_like(out) if self.rule.needs_work else None
        self.rule.directions(chunk, g.unsqueeze(0), t, grp, out, work)
        return g, out[0]

    def directions(self, n: int, t: int, wd: float, grp: dict[str, Any]) -> None:
        """Per table: touched rows R (union over tasks), their per-task gradients and updates
        ``D_R`` (moments gathered), and ``‖u‖²`` of the one update all tasks share on every
        other row (their gradient there is ``wd·θ`` for every task) — exact, no per-task copy.
        """
        self.work = []
        for k, p in enumerate(self.params):
            per = [self.grads[i][k] for i in range(n)]
            R = torch.unique(torch.cat([r for r, _ in per]))
            theta = p.detach()[R].clone()
            g = theta.unsqueeze(0).repeat(n, 1, 1).mul_(wd)
            for i, (r, v) in enumerate(per):
                if r.numel():
                    g[i].index_add_(0, torch.searchsorted(R, r), v)
            st = {key: buf[R].clone() for key, buf in self.state[k].items()}
            D = torch.empty_like(g)
            work = torch.empty_like(g) if self.rule.needs_work else None
            self.rule.directions(st, g, t, grp, D, work)
            touched = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
            touched[R] = True
            uu = 0.0
            for a in range(0, p.shape[0], ROW_CHUNK):
                b = min(a + ROW_CHUNK, p.shape[0])
                _, u = self._untouched_u(k, a, b, t, wd, grp)
                u[touched[a:b]] = 0
                uu += float(u.to(torch.float64).pow(2).sum())
            self.work.append({"R": R, "theta": theta, "g": g, "D": D, "st": st, "uu": uu})

    def add_gram(self, G: np.ndarray, n: int) -> np.ndarray:
        """``G`` plus, per table, ``D_Rᵀ D_R`` and the constant ``‖u‖²`` in every entry."""
        for w in self.work:
            G = G + gram64(w["D"].reshape(n, -1)) + w["uu"]
        return G

    def combine(
        self, a: torch.Tensor, alpha: np.ndarray, wd: float, n: int, checks: list[torch.Tensor]
    ) -> None:
        """Touched rows: ``u = D_R α`` and the moments' ``ĝ = Σαᵢ(gᵢ + wd·θ) + (1 − Σα)·wd·θ``;
        appends their sums to ``checks`` (the finiteness test)."""
        for w in self.work:
            w["u"] = torch.mv(w["D"].reshape(n, -1).T, a).view_as(w["theta"])
            w["ghat"] = torch.einsum("i,irk->rk", a, w["g"])  # Σαᵢ(gᵢ + wd·θ)
            if wd != 0:
                w["ghat"].add_(w["theta"], alpha=wd * (1.0 - float(np.sum(alpha))))
            checks += [w["u"].sum(), w["ghat"].sum()]

    def apply(self, sum_alpha: float, t: int, lr: float, wd: float, grp: dict) -> None:
        """Step and moment feed of the row-wise tables (after the dense ones, same α)."""
        with torch.no_grad():
            for k, (p, w) in enumerate(zip(self.params, self.work)):
                st = self.state[k]
                for a in range(0, p.shape[0], ROW_CHUNK):  # untouched rows: (Σα)·u, fed wd·θ
                    b = min(a + ROW_CHUNK, p.shape[0])
                    g, u = self._untouched_u(k, a, b, t, wd, grp)
                    p[a:b].add_(u, alpha=-lr * sum_alpha)
                    self.rule.feed({key: buf[a:b] for key, buf in st.items()}, g, grp)
                R = w["R"]  # touched rows: overwrite with their own update and feed
                p[R] = w["theta"] - lr * w["u"]
                self.rule.feed(w["st"], w["ghat"], grp)
                for key, buf in st.items():
                    buf[R] = w["st"][key]

    def state_dict(self) -> list[dict[str, torch.Tensor]]:
        """Copies of the moments, one dict per table (checkpoint key ``shared.rows``)."""
        return [{k: v.clone() for k, v in st.items()} for st in self.state]

    def load_state_dict(self, rows: list[dict[str, torch.Tensor]]) -> None:
        if len(rows) != len(self.params):
            raise InputError("state_dict: row-wise tables differ from this optimizer's")
        for st, saved_st in zip(self.state, rows):
            for k, buf in st.items():
                buf.copy_(saved_st[k])
