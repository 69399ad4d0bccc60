"""Row-wise embedding tables in PUB (``row_wise=``) equal the dense PUB, with no per-task copy.

(In tests/distributed because the large-embedding work belongs to the scaling issue.)
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtopt.optim import PUB


class EmbNet(nn.Module):
    """A 40-row embedding table (shared), a linear trunk (shared), one tower per task; fp64."""

    def __init__(self, sparse: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(40, 3, sparse=sparse)
        self.trunk = nn.Linear(3 + 2, 5)
        self.towers = nn.ModuleList(nn.Linear(5, 1) for _ in range(3))
        self.double()

    def losses(self, idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        z = torch.tanh(self.trunk(torch.cat([self.emb(idx), x], 1)))
        return [((t(z)[:, 0] - y[:, i]) ** 2).mean() for i, t in enumerate(self.towers)]


def run(row_wise: bool, sparse: bool, base: str, wd: float, steps: int = 6):
    net = EmbNet(sparse)
    shared = [net.emb.weight, *net.trunk.parameters()]
    opt = PUB(
        shared,
        [list(t.parameters()) for t in net.towers],
        lr=0.05,
        base=base,
        weight_decay=wd,
        alpha_scale="exact",
        row_wise=[net.emb.weight] if row_wise else (),
    )
    g = torch.Generator().manual_seed(1)
    alphas = []
    for s in range(steps):
        # rows 0..11 on even steps, 12..23 on odd ones, 24..39 never
        idx = torch.randint(0, 12, (8,), generator=g) + 12 * (s % 2)
        x = torch.randn(8, 2, generator=g, dtype=torch.float64)
        y = torch.randn(8, 3, generator=g, dtype=torch.float64)
        opt.step(net.losses(idx, x, y))
        alphas.append(opt.last.alpha)
    return net, opt, alphas


@pytest.mark.parametrize(
    ("base", "wd", "sparse"),
    [("adam", 0.0, True), ("adam", 0.01, False), ("rmsprop", 0.01, True), ("adagrad", 0.0, False)],
)
def test_row_wise_equals_dense(base: str, wd: float, sparse: bool) -> None:
    dense, _, a_dense = run(False, False, base, wd)
    rows, opt, a_rows = run(True, sparse, base, wd)
    assert torch.allclose(torch.tensor(a_rows), torch.tensor(a_dense), rtol=1e-9, atol=0)
    for (k, v), w in zip(dense.state_dict().items(), rows.state_dict().values()):
        assert torch.allclose(v, w, rtol=1e-10, atol=1e-12), k
    # the update shared by the untouched rows (Adam's momentum from earlier steps, or weight
    # decay) entered G: the constant-u path is exercised, not only the touched rows
    if base == "adam" or wd:
        assert opt._row_work[0]["uu"] > 0
    # no per-task copy of the table: the dense buffers exclude it
    assert opt._grads.shape == (3, 5 * 5 + 5)


def test_row_wise_state_dict_roundtrip() -> None:
    net, opt, _ = run(True, True, "adam", 0.01, steps=2)
    sd = opt.state_dict()
    _, opt2, _ = run(True, True, "adam", 0.01, steps=1)
    opt2.load_state_dict(sd)
    for a, b in zip(opt._row_state, opt2._row_state):
        for k in a:
            assert torch.equal(a[k], b[k])


# ---- the recipe option method.embeddings (trainer -> PUB)
def _train(tmp_path, method: str, embeddings: str | None):
    import dist_workers

    from mtopt.config import recipe_from_dict
    from mtopt.train.trainer import Trainer

    raw = dist_workers.recipe(method).to_dict()
    raw["method"]["embeddings"] = embeddings
    t = Trainer(recipe_from_dict(raw, "r.yaml"), tmp_path / f"{method}-{embeddings}")
    t.run()
    return t


def test_recipe_embeddings_row_wise_equals_balanced(tmp_path) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    torch.set_num_threads(1)
    bal = _train(tmp_path, "pub", None)
    rw = _train(tmp_path, "pub", "row-wise")
    plain = _train(tmp_path, "pub", "plain")
    table = rw.model.inputs.embedding
    assert table.sparse and rw.method.opt._rows == [table.weight]
    d_full = bal.method.opt._layout.d
    assert rw.method.opt._layout.d == d_full - table.weight.numel()  # no dense copy in D
    sb, sr, sp = bal.model.state_dict(), rw.model.state_dict(), plain.model.state_dict()
    for k in sb:
        assert torch.allclose(sb[k], sr[k], rtol=1e-4, atol=1e-6), k
    # plain: the table left D (it is stepped with the task-specific parameters) -> another run
    assert plain.method.opt._layout.d == d_full - table.weight.numel()
    assert not plain.method.opt._rows
    k = "inputs.embedding.weight"
    assert not torch.allclose(sp[k], sb[k], rtol=1e-4, atol=1e-6)


def test_recipe_embeddings_refused_for_other_methods(tmp_path) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mtopt.errors import InputError

    with pytest.raises(InputError, match="method.embeddings: 'row-wise' is only supported"):
        _train(tmp_path, "ls", "row-wise")
