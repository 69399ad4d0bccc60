"""The backbone contract: a multi-task model that declares its shared / task-specific split.

Every method and PUB take the split from here (DESIGN §1), never from parameter names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MultiTaskModel(nn.Module):
    """Base class of backbones.

    Subclasses implement :meth:`forward` returning per-task **logits** ``Tensor[B, n_tasks]``
    (float32) and set ``self.representation`` to the shared representation (the tensor all
    towers read, for MGDA-UB) during forward. ESMM-style models override :meth:`probabilities`
    and :meth:`losses`.
    """

    n_tasks: int
    task_names: list[str]
    representation: torch.Tensor | None = None

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's loss depends on (embeddings, experts, gates…)."""
        raise NotImplementedError

    def task_parameters(self, i: int) -> list[nn.Parameter]:
        """Parameters only task ``i`` depends on (its tower)."""
        raise NotImplementedError

    def all_task_parameters(self) -> list[list[nn.Parameter]]:
        return [self.task_parameters(i) for i in range(self.n_tasks)]

    def probabilities(self, batch: dict) -> torch.Tensor:
        """Predicted probabilities ``Tensor[B, n_tasks]``."""
        return torch.sigmoid(self(batch))

    def losses(self, batch: dict, logits: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per-task mean binary cross-entropy losses (a list of n scalar tensors)."""
        out = self(batch) if logits is None else logits
        y = batch["labels"].to(out.dtype)
        return [
            nn.functional.binary_cross_entropy_with_logits(out[:, i], y[:, i])
            for i in range(self.n_tasks)
        ]


def check_split(model: MultiTaskModel) -> None:
    """Assert that shared and task parameters partition the model's parameters."""
    seen: dict[int, str] = {}
    groups: Sequence[tuple[str, list[nn.Parameter]]] = [("shared", model.shared_parameters())] + [
        (f"task {i}", model.task_parameters(i)) for i in range(model.n_tasks)
    ]
    for label, params in groups:
        for p in params:
            if id(p) in seen:
                raise AssertionError(f"parameter in both {seen[id(p)]} and {label}")
            seen[id(p)] = label
    missing = [n for n, p in model.named_parameters() if id(p) not in seen]
    if missing:
        raise AssertionError(f"parameters in neither shared nor task groups: {missing}")
