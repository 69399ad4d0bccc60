"""Per-group balancing (issue #17, item 2): one Gram and one α per group of shared tensors.

References: one group is today's PUB bit for bit; with several groups the first Adam step is
``θ_g ← θ_g − lr·D_g α_g`` with ``α_g`` solved (independently, by the Newton backend and the
Nash residual) on the group's own Frobenius-scaled Gram.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtopt.errors import InputError
from mtopt.optim import PUB
from mtopt.solvers import solve


def run(tools, steps=4, **kw):
    m = tools.Tiny(n=3)
    opt = PUB(m.shared(), m.tasks(), lr=1e-2, **kw)
    for s in range(steps):
        opt.step(m.losses(tools.make_batch(s, n=3)))
    return m, opt


@pytest.mark.parametrize("kw", [{}, {"weighting": "upgrad"}, {"weight_decay": 0.1}])
def test_one_group_is_pub_bit_for_bit(tools, kw) -> None:
    a, oa = run(tools, solve_every=2, **kw)
    m = tools.Tiny(n=3)
    ob = PUB(m.shared(), m.tasks(), lr=1e-2, solve_every=2, groups=[m.shared()], **kw)
    for s in range(4):
        ob.step(m.losses(tools.make_batch(s, n=3)))
    assert torch.equal(tools.flat(a.parameters()), tools.flat(m.parameters()))
    assert oa.last.alpha == ob.last.alpha and oa.stats == ob.stats


def test_layer_groups_first_step(tools) -> None:
    m = tools.Tiny(n=3)
    theta0 = [p.detach().clone().reshape(-1).numpy() for p in m.shared()]
    losses = m.losses(tools.make_batch(0, n=3))
    g = tools.task_grads(losses, m.shared()).numpy()
    D = g / (np.abs(g) + 1e-8)  # Adam's first step, per task
    opt = PUB(m.shared(), m.tasks(), lr=1e-2, groups="layer", weight_decay=0.0)
    opt.step(m.losses(tools.make_batch(0, n=3)))
    off = 0
    alphas = []
    for p, t0 in zip(m.shared(), theta0):
        Dg = D[:, off : off + t0.size]
        off += t0.size
        G = Dg @ Dg.T
        res = solve(G / np.linalg.norm(G), "newton")
        assert res.ok
        alphas.append(res.alpha)
        np.testing.assert_allclose(p.detach().reshape(-1).numpy(), t0 - 1e-2 * res.alpha @ Dg,
                                   rtol=1e-9, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(opt.last.group_alpha, alphas, rtol=1e-9)
    assert len(opt.last.group_solve_seconds) == 3
    assert opt.last.solve_seconds == pytest.approx(sum(opt.last.group_solve_seconds))


def test_groups_checkpoint_roundtrip_and_bad_input(tools) -> None:
    m, opt = run(tools, steps=3, groups="layer", solve_every=2)
    st = opt.state_dict()
    m2 = tools.Tiny(n=3)
    o2 = PUB(m2.shared(), m2.tasks(), lr=1e-2, groups="layer", solve_every=2)
    o2.load_state_dict(st)
    assert o2.stats == opt.stats
    with pytest.raises(InputError, match="groups"):
        PUB(m2.shared(), m2.tasks(), groups=[m2.shared()[:1]])  # does not cover D
    with pytest.raises(InputError, match="groups"):
        PUB(m2.shared(), m2.tasks(), groups="experts")
    with pytest.raises(InputError, match="groups"):
        PUB(m2.shared(), m2.tasks(), groups="layer", row_wise=[m2.emb.weight])


def test_embeddings_vs_trunk_split() -> None:
    from mtopt.methods.pub import _groups

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(5, 2)
            self.lin = nn.Linear(2, 2)

        def shared_parameters(self):
            return [self.emb.weight, self.lin.weight, self.lin.bias]

    m = M()
    groups = _groups(m, "embeddings-vs-trunk")
    assert [len(g) for g in groups] == [1, 2] and groups[0][0] is m.emb.weight
    with pytest.raises(InputError, match="groups"):
        _groups(m, "experts")
