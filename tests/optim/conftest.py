"""Shared helpers of the optimizer tests: a tiny two-tower model and textbook reference rules.

The reference rules are written out from the formulas (torch.optim's documented arithmetic and
Algorithm 1 of the PUB paper), independently of ``mtopt.optim.rules``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn


class Tiny(nn.Module):
    """Embedding + linear trunk (shared), one linear tower per task; float64 by default."""

    def __init__(self, n: int = 2, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.n = n
        self.emb = nn.Embedding(7, 3)
        self.trunk = nn.Linear(4 + 3, 6)
        self.towers = nn.ModuleList(nn.Linear(6, 1) for _ in range(n))
        self.to(dtype)
        self.dtype = dtype

    def shared(self) -> list[nn.Parameter]:
        return [self.emb.weight, self.trunk.weight, self.trunk.bias]

    def tasks(self) -> list[list[nn.Parameter]]:
        return [list(t.parameters()) for t in self.towers]

    def losses(self, batch: tuple, scale: tuple[float, ...] | None = None) -> list[torch.Tensor]:
        x, idx, y = batch
        z = torch.tanh(self.trunk(torch.cat([x, self.emb(idx)], dim=1)))
        out = [((t(z)[:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(self.towers)]
        if scale is not None:
            out = [s * L for s, L in zip(scale, out)]
        return out


def make_batch(step: int, n: int = 2, dtype: torch.dtype = torch.float64, rows: int = 16):
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(rows, 4, generator=g).to(dtype)
    idx = torch.randint(0, 5, (rows,), generator=g)  # rows 5, 6 of the table never used
    y = torch.randn(rows, n, generator=g).to(dtype)
    return x, idx, y


def flat(ts) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in ts])


def task_grads(losses, params) -> torch.Tensor:
    """``[n, d]`` per-task gradients (zeros where a task does not reach)."""
    rows = []
    for L in losses:
        gs = torch.autograd.grad(L, params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)]
            )
        )
    return torch.stack(rows)


class RefRule:
    """Textbook per-task directions (moments held constant) and moment feeding."""

    def __init__(self, base: str, paper_exact: bool = False, **hp) -> None:
        self.base, self.paper_exact = base, paper_exact
        self.b1, self.b2 = hp.get("betas", (0.9, 0.999))
        self.eps = hp.get("eps", 1e-10 if base == "adagrad" else 1e-8)
        self.rho = hp.get("alpha", 0.99)
        self.lr_decay = hp.get("lr_decay", 0.0)
        self.state: dict[str, torch.Tensor] = {}

    def init(self, d: int, dtype, rows: int | None = None) -> None:
        shape = (d,) if rows is None else (rows, d)
        keys = {"adam": ("m", "v"), "adagrad": ("S",), "rmsprop": ("v",)}[self.base]
        self.state = {k: torch.zeros(shape, dtype=dtype) for k in keys}

    def dirs(self, G: torch.Tensor, t: int) -> torch.Tensor:
        s, b1, b2, eps = self.state, self.b1, self.b2, self.eps
        if self.base == "adam":
            m1 = b1 * s["m"] + (1 - b1) * G
            v1 = b2 * s["v"] + (1 - b2) * G * G
            if self.paper_exact:
                return m1 / torch.sqrt(v1 + eps)
            mh, vh = m1 / (1 - b1**t), v1 / (1 - b2**t)
            return mh / (torch.sqrt(vh) + eps)
        if self.base == "adagrad":
            return G / (torch.sqrt(s["S"] + G * G) + eps) / (1 + (t - 1) * self.lr_decay)
        v1 = self.rho * s["v"] + (1 - self.rho) * G * G
        return G / torch.sqrt(v1 + eps) if self.paper_exact else G / (torch.sqrt(v1) + eps)

    def feed(self, g: torch.Tensor) -> None:
        s = self.state
        if self.base == "adam":
            s["m"] = self.b1 * s["m"] + (1 - self.b1) * g
            s["v"] = self.b2 * s["v"] + (1 - self.b2) * g * g
        elif self.base == "adagrad":
            s["S"] = s["S"] + g * g
        else:
            s["v"] = self.rho * s["v"] + (1 - self.rho) * g * g


def residual(G: torch.Tensor, a: torch.Tensor) -> float:
    return float((a * (G @ a) - 1).abs().max())


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    den = max(float(b.norm()), 1e-300)
    return float((a - b).norm()) / den


@pytest.fixture
def tools() -> SimpleNamespace:
    return SimpleNamespace(
        Tiny=Tiny,
        make_batch=make_batch,
        flat=flat,
        task_grads=task_grads,
        RefRule=RefRule,
        residual=residual,
        rel=rel,
        sqrt=math.sqrt,
    )
