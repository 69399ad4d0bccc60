"""Small fakes of the data / backbone / method contracts for the trainer tests.

Importing this module registers ``fake-ranking`` (dataset), ``fake-mlp`` (backbone) and
``fake-closure`` (method) in mtopt's registry. Subprocess tests import it before calling
``mtopt.cli.main`` (see :data:`CLI_PRELUDE`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtopt.data.base import MTDataset, Schema
from mtopt.methods.base import Method, OptimizerConfig, StepInfo, make_torch_optimizer
from mtopt.models.base import MultiTaskModel
from mtopt.registry import registry

HERE = Path(__file__).resolve().parent
#: python -c prelude that makes the fakes available to ``mtopt.cli.main`` in a subprocess
CLI_PRELUDE = (
    f"import sys; sys.path.insert(0, {str(HERE)!r}); import mtopt_train_fakes; "
    "from mtopt.cli import main; sys.argv[0] = 'mtopt'; main()"
)


class Crash(Exception):
    """Raised by :class:`FakeMLP` at the training forward number :data:`CRASH_AT`."""


#: when set, the FakeMLP raises :class:`Crash` at that training forward (simulated kill)
CRASH_AT: int | None = None


class FakeRanking(MTDataset):
    """Two (or more) binary tasks from a logistic model of 4 dense + 1 categorical feature."""

    def __init__(
        self,
        rows: int = 600,
        n_tasks: int = 2,
        seed: int = 0,
        single_class_val_task: int | None = None,
        noise: float = 0.5,
    ) -> None:
        rng = np.random.default_rng(seed)
        n_all = rows + rows // 2 + rows // 2
        dense = rng.normal(size=(n_all, 4)).astype(np.float32)
        cat = rng.integers(0, 5, size=(n_all, 1))
        cat_effect = rng.normal(size=(5, n_tasks))
        w = rng.normal(size=(4, n_tasks))
        logits = dense @ w + cat_effect[cat[:, 0]] + noise * rng.normal(size=(n_all, n_tasks))
        labels = (logits > 0).astype(np.float32)
        cut = [0, rows, rows + rows // 2, n_all]
        self.splits: dict[str, dict[str, torch.Tensor]] = {}
        for i, name in enumerate(("train", "val", "test")):
            sl = slice(cut[i], cut[i + 1])
            y = torch.from_numpy(labels[sl].copy())
            if name == "val" and single_class_val_task is not None:
                y[:, single_class_val_task] = 0.0
            self.splits[name] = {
                "cat": torch.from_numpy(cat[sl].copy()).long(),
                "dense": torch.from_numpy(dense[sl].copy()),
                "labels": y,
            }
        self.schema = Schema(
            cat_cardinalities=[5], n_dense=4, task_names=[f"t{i}" for i in range(n_tasks)]
        )

    def batches(
        self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0, epoch: int = 0
    ) -> Iterator[dict]:
        data = self.splits[split]
        n = data["labels"].shape[0]
        if shuffle:
            order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))
        else:
            order = torch.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            yield {k: v[idx] for k, v in data.items()}

    def num_rows(self, split: str) -> int | None:
        return int(self.splits[split]["labels"].shape[0])


class FakeMLP(MultiTaskModel):
    """Embedding + dense -> shared hidden layer (with dropout) -> one linear head per task.

    ``nan_at``: the ``nan_at``-th training-mode forward returns NaN logits.
    ``sleep``: seconds to sleep per training forward (to make a run slow enough to kill).
    """

    def __init__(
        self,
        schema: Schema,
        hidden: int = 8,
        dropout: float = 0.1,
        nan_at: int | None = None,
        sleep: float = 0.0,
    ) -> None:
        super().__init__()
        self.task_names = list(schema.task_names)
        self.n_tasks = len(self.task_names)
        self.emb = nn.Embedding(schema.cat_cardinalities[0], 3)
        self.trunk = nn.Linear(schema.n_dense + 3, hidden)
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(self.n_tasks))
        self.nan_at = nan_at
        self.sleep = sleep
        self.train_forwards = 0
        self.seen: list[float] = []

    def forward(self, batch: dict) -> torch.Tensor:
        x = torch.cat([batch["dense"], self.emb(batch["cat"][:, 0])], dim=1)
        h = self.drop(torch.relu(self.trunk(x)))
        self.representation = h
        out = torch.cat([head(h) for head in self.heads], dim=1)
        if self.training:
            self.train_forwards += 1
            self.seen.append(float(batch["dense"].sum()))
            if self.sleep:
                time.sleep(self.sleep)
            if CRASH_AT is not None and self.train_forwards == CRASH_AT:
                raise Crash(f"simulated crash at forward {CRASH_AT}")
            if self.nan_at is not None and self.train_forwards == self.nan_at:
                out = out * float("nan")
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.emb.parameters()) + list(self.trunk.parameters())

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        return list(self.heads[i].parameters())


class FakeClosureMethod(Method):
    """LS that asks for a closure and checks it re-evaluates the same batch with grad."""

    needs_closure = True
    has_weights = True

    def __init__(self, model: MultiTaskModel, optimizer: OptimizerConfig) -> None:
        super().__init__(model, optimizer)
        self.opt = make_torch_optimizer(list(model.parameters()), optimizer)
        self.checks: list[tuple[bool, bool]] = []

    def step(self, losses: Sequence[torch.Tensor], closure: Any = None) -> StepInfo:
        assert closure is not None, "the trainer must pass a closure"
        self.opt.zero_grad(set_to_none=True)
        total = sum(losses)
        total.backward()
        self.opt.step()
        batch_sum = self.model.seen[-1]
        after = closure()
        same_batch = self.model.seen[-1] == batch_sum
        self.checks.append((same_batch, all(x.requires_grad for x in after)))
        return StepInfo(
            loss=float(total.detach()),
            task_losses=[float(x.detach()) for x in losses],
            weights=[0.5] * self.n_tasks,
            solver_status="ok",
        )

    def state_dict(self) -> dict[str, Any]:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["opt"])


registry.register("dataset", "fake-ranking", FakeRanking, "test fake: tiny ranking data")
registry.register("backbone", "fake-mlp", FakeMLP, "test fake: tiny shared MLP")
registry.register("method", "fake-closure", FakeClosureMethod, "test fake: LS with closure")


def fake_recipe(**sections: dict[str, Any]) -> dict[str, Any]:
    """A raw recipe dict on the fakes; ``sections`` update the defaults per section."""
    raw: dict[str, Any] = {
        "data": {"name": "fake-ranking", "rows": 600},
        "model": {"name": "fake-mlp"},
        "method": {"name": "ls"},
        "optimizer": {"lr": 0.01, "batch_size": 64},
        "train": {"epochs": 2, "seed": 3, "threads": 1},
        "output": {"plots": False, "progress": False},
    }
    for k, v in sections.items():
        raw.setdefault(k, {}).update(v)
    return raw
