"""A tiny Adam loop on synthetic-ranking data lifts both tasks' validation AUC above 0.6."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from mtopt.registry import registry


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is fastest and immune to CPU oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    # a less rare conversion so that 4000 validation rows hold enough positives
    return registry.get("dataset", "synthetic-ranking")(
        n_train=6000, n_val=4000, n_test=10, conversion_rate=0.25, seed=0
    )


@pytest.mark.parametrize(
    "name, cfg",
    [
        ("mmoe", {"expert_dim": 32, "n_experts": 4}),
        ("ple", {"expert_dim": 32, "n_shared": 2, "n_specific": 2, "esmm": True}),
    ],
)
def test_tiny_training_learns_both_tasks(data, name: str, cfg: dict) -> None:
    torch.manual_seed(0)
    model = registry.get("backbone", name)(data.schema, tower_dims=[16], **cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    val = next(data.batches("val", 4000))
    with torch.no_grad():
        before = model.probabilities(val).numpy()
    for epoch in range(2):
        for batch in data.batches("train", 256, shuffle=True, seed=0, epoch=epoch):
            opt.zero_grad()
            sum(model.losses(batch)).backward()
            opt.step()
    with torch.no_grad():
        after = model.probabilities(val).numpy()
    y = val["labels"].numpy()
    for i in range(2):
        auc = roc_auc_score(y[:, i], after[:, i])
        assert auc > 0.6, (name, i, auc)
        assert auc > roc_auc_score(y[:, i], before[:, i]) + 0.05
