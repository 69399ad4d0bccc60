"""How far PUB's weighted step (``between_solves="weighted"``) is from Algorithm 1's, per step.

Trains a recipe (default: the quickstart, MMoE on the embedded synthetic data) with PUB on the
exact per-task path, and at every step also forms, from the *same* state (moments, per-task
gradients, α actually applied), the step the weighted path would take:
``S·Δ(ḡ)``, ``ḡ = Σᵢ(αᵢ/S)gᵢ`` (+ ``wd·θ``), with the optimizer's own rule code. Reports the
cosine and the norm ratio ``‖u_w‖/‖u‖`` of the weighted to the exact shared step — over all
shared coordinates, the embedding tables' coordinates and the rest — by training phase, and
which steps the weighted path would take at the given ``weighted_tol`` (solve steps and steps
whose newest-gradient weight ``(1−β₂)/(1−β₂ᵗ)`` exceeds it stay exact). The comparison is
one-step: both steps start from the exact run's state, so errors do not compound here (the
training outcome is measured by ``mtopt reproduce weighted``).

    python bench/pub_weighted_error.py --out runs/weighted_error.json
        [--recipe recipes/quickstart.yaml] [--set method.solve_every=10] [--tol 0.02]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from mtopt.io import atomic_write_json
from mtopt.optim.multitask import MultiTaskUpdate
from mtopt.optim.weighted import newest_weight
from mtopt.train.components import load_recipe
from mtopt.train.trainer import Trainer

PHASES = [(1, 10), (11, 50), (51, 100), (101, 200), (201, 500), (501, 10**9)]


def _cos_ratio(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    na, nb = float(a64.norm()), float(b64.norm())
    if na == 0 or nb == 0:
        return math.nan, math.nan
    return float(a64 @ b64) / (na * nb), na / nb


def install_probe(records: list[dict[str, Any]]) -> None:
    """Wrap ``MultiTaskUpdate._do_step`` to record the weighted step next to the exact one."""
    original = MultiTaskUpdate._do_step

    def probed(self, tg, lr, wd, grp, plan=None):
        assert plan is None, "probe the per-task path"
        grads = self._grads.clone()
        moments = {k: v.clone() for k, v in self._moments.items()}
        t = self._t + 1
        theta = torch.cat([p.detach().reshape(-1) for p in self._shared])
        original(self, tg, lr, wd, grp, plan)
        if self.last.alpha is None:
            return
        alpha = torch.tensor(self.last.alpha, dtype=grads.dtype)
        S = float(alpha.sum())
        gbar = (alpha / S) @ grads + wd * theta
        out = torch.empty_like(gbar).unsqueeze(0)
        work = torch.empty_like(out)
        self._rule.directions(moments, gbar.unsqueeze(0), t, grp, out, work)
        u_w = S * out[0]
        u = self._u
        emb = torch.zeros_like(u, dtype=torch.bool)
        lay = self._layout
        for k, p in enumerate(self._shared):
            if p.dim() == 2 and p.shape[0] > 64 and lay.numels[k] == p.numel():
                if any(p is m.weight for m in _embeddings):
                    emb[lay.offsets[k] : lay.offsets[k] + lay.numels[k]] = True
        rec = {
            "step": t,
            "solved": bool(self.last.solved),
            "w_t": newest_weight(self._rule, t, grp),
        }
        rec["all"] = _cos_ratio(u_w, u)
        rec["embeddings"] = _cos_ratio(u_w[emb], u[emb]) if emb.any() else (math.nan, math.nan)
        rec["rest"] = _cos_ratio(u_w[~emb], u[~emb])
        records.append(rec)

    MultiTaskUpdate._do_step = probed  # type: ignore[method-assign]


_embeddings: list[torch.nn.Embedding] = []
_embedding_init = torch.nn.Embedding.__init__


def _recording_init(self: torch.nn.Embedding, *args: Any, **kwargs: Any) -> None:
    _embedding_init(self, *args, **kwargs)
    _embeddings.append(self)


torch.nn.Embedding.__init__ = _recording_init  # type: ignore[method-assign]


def summarize(records: list[dict[str, Any]], tol: float) -> list[dict[str, Any]]:
    rows = []
    for a, b in PHASES:
        sel = [r for r in records if a <= r["step"] <= b]
        if not sel:
            continue
        would = [r for r in sel if not r["solved"] and r["w_t"] <= tol]
        row: dict[str, Any] = {"steps": f"{a}–{b if b < 10**9 else max(r['step'] for r in sel)}"}
        row["n"] = len(sel)
        row["weighted_steps"] = len(would)
        for part in ("all", "embeddings", "rest"):
            cs = [r[part][0] for r in sel if not math.isnan(r[part][0])]
            rs = [r[part][1] for r in sel if not math.isnan(r[part][1])]
            if cs:
                row[f"{part}_cos_min"] = min(cs)
                row[f"{part}_cos_median"] = statistics.median(cs)
                row[f"{part}_ratio_min"] = min(rs)
                row[f"{part}_ratio_max"] = max(rs)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE recipe override")
    ap.add_argument("--tol", type=float, default=0.02, help="weighted_tol to report")
    ap.add_argument("--out", type=Path, default=Path("runs/weighted_error.json"))
    args = ap.parse_args()
    recipe = load_recipe(args.recipe, [*args.set, "method.name=pub", "output.plots=false"])
    torch.set_num_threads(1)
    records: list[dict[str, Any]] = []
    install_probe(records)
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(recipe, Path(tmp) / "run")
        tr.run()
    table = summarize(records, args.tol)
    out = {"recipe": args.recipe, "set": args.set, "tol": args.tol, "phases": table}
    atomic_write_json(args.out, {**out, "steps": records})
    cols = ["steps", "n", "weighted_steps", "all_cos_min", "all_cos_median", "all_ratio_min"]
    cols += ["all_ratio_max", "embeddings_cos_min", "embeddings_ratio_max", "rest_cos_min"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in table:
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")


def _fmt(x: Any) -> str:
    return f"{x:.5f}" if isinstance(x, float) else str(x)


if __name__ == "__main__":
    main()
