"""PUB with a Gramian weighting at the update level (issue #17, item 1).

The Nash default reproduces today's PUB bit for bit; another weighting gets the same (scaled)
Gram of D the Nash solve would see and its α moves θ by ``−lr·Dα`` — checked against an
independent float64 reference: D from the textbook Adam rule of the conftest, G = DDᵀ, α from
the weighting's reference computation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtopt.errors import InputError, UnknownNameError
from mtopt.optim import PUB
from mtopt.weightings import get_weighting

WEIGHTINGS = ["mgda", "imtl-g", "cagrad", "upgrad", "aligned-mtl", "fairgrad"]


def run(tools, steps: int = 4, n: int = 3, **kw):
    m = tools.Tiny(n=n)
    opt = PUB(m.shared(), m.tasks(), lr=1e-2, **kw)
    for s in range(steps):
        opt.step(m.losses(tools.make_batch(s, n=n)))
    return m, opt


def test_nash_weighting_is_todays_pub_bit_for_bit(tools) -> None:
    a, oa = run(tools, solve_every=2)
    b, ob = run(tools, solve_every=2, weighting="nash")
    assert torch.equal(tools.flat(a.parameters()), tools.flat(b.parameters()))
    assert oa.last.alpha == ob.last.alpha and ob.weighting == "nash"
    assert "weighting" not in ob.state_dict()["extra"]  # checkpoint layout unchanged


@pytest.mark.parametrize("name", WEIGHTINGS)
def test_first_step_is_minus_lr_D_alpha(tools, name: str) -> None:
    """Step 1 of Adam: Δᵢ = gᵢ/(|gᵢ| + eps) elementwise (bias-corrected moments of one
    gradient); G = ΔΔᵀ/‖ΔΔᵀ‖_F (frobenius), α = weighting(G), θ₁ = θ₀ − lr·Σ αᵢΔᵢ."""
    m = tools.Tiny(n=3)
    theta0 = tools.flat(m.shared()).clone()
    losses = m.losses(tools.make_batch(0, n=3))
    g = tools.task_grads(losses, m.shared()).to(torch.float64)
    D = (g / (g.abs() + 1e-8)).numpy()
    G = D @ D.T
    G = G / np.linalg.norm(G)
    alpha = get_weighting(name)(G).alpha
    opt = PUB(m.shared(), m.tasks(), lr=1e-2, weighting=name)
    opt.step(m.losses(tools.make_batch(0, n=3)))
    np.testing.assert_allclose(opt.last.alpha, alpha, rtol=1e-9, atol=1e-12)
    expect = theta0.numpy() - 1e-2 * (alpha @ D)
    np.testing.assert_allclose(tools.flat(m.shared()).numpy(), expect, rtol=1e-9, atol=1e-12)


def test_schedule_fallback_and_checkpoint_are_the_balance_policy(tools) -> None:
    _, opt = run(tools, steps=5, solve_every=2, weighting="upgrad")
    assert opt.stats["solves"] == 3 and opt.stats["reuses"] == 2
    st = opt.state_dict()
    assert st["extra"]["weighting"] == "upgrad"
    m2 = tools.Tiny(n=3)
    opt2 = PUB(m2.shared(), m2.tasks(), lr=1e-2, solve_every=2, weighting="upgrad")
    opt2.load_state_dict(st)
    assert opt2.balance.alpha is not None
    np.testing.assert_array_equal(opt2.balance.alpha, opt.balance.alpha)


def test_failed_weighting_falls_back_to_previous(tools) -> None:
    from mtopt.weightings.base import Weighting, WeightingResult

    class Fails(Weighting):
        name = "fails"
        calls = 0

        def weights(self, G):
            Fails.calls += 1
            if Fails.calls == 1:
                return WeightingResult(np.ones(G.shape[0]))
            return WeightingResult(None, status="not_converged")

    _, opt = run(tools, steps=3, weighting=Fails())
    assert opt.stats["fallbacks"] == 2 and opt.last.action == "fallback-previous"
    assert opt.last.alpha == [1.0, 1.0, 1.0]


def test_weighted_between_solves_works_with_any_weighting(tools) -> None:
    _, opt = run(tools, steps=4, solve_every=2, weighting="upgrad",
                 between_solves="weighted", weighted_tol=1.0)  # fmt: skip
    assert opt.last.path == "weighted" and opt.stats["solves"] == 2


def test_bad_weighting_input(tools) -> None:
    m = tools.Tiny(n=2)
    with pytest.raises(UnknownNameError, match="weighting"):
        PUB(m.shared(), m.tasks(), weighting="nope")
    with pytest.raises(InputError, match="weighting_options"):
        PUB(m.shared(), m.tasks(), weighting="nash", weighting_options={"c": 1})
    with pytest.raises(InputError, match="fixed_alpha"):
        PUB(m.shared(), m.tasks(), weighting="mgda", fixed_alpha=1)
    with pytest.raises(InputError, match="fair_alpha"):
        PUB(m.shared(), m.tasks(), weighting="fairgrad", weighting_options={"fair_alpha": 0})
