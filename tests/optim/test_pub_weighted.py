"""PUB's ``between_solves="weighted"`` (one backward between solves, mtopt.optim.weighted).

References: the step written out from the issue's formula on per-task gradients from separate
backward passes (independent of the one-backward path); exactness limits derived in the module
docstring (one task; β₂ → 1 with filled moments); the schedule from ``(1−β₂)/(1−β₂ᵗ)``.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch

from mtopt.errors import InputError
from mtopt.optim import PUB


def _pub(m, **kw):
    kw.setdefault("lr", 0.01)
    return PUB(m.shared(), m.tasks(), **kw)


def _params(m) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def test_weighted_step_matches_the_formula_on_per_task_gradients(tools):
    """Every step against a textbook reference: solve steps are Algorithm 1 with the α PUB
    solved; other steps ``u = (β₁Sm + (1−β₁)ĝ')/bc₁ / (√((β₂v + (1−β₂)(ĝ'/S)²)/bc₂) + eps)``
    with ``ĝ' = Σαᵢ(gᵢ + wd·θ)`` from n separate backward passes; towers by torch.optim.Adam."""
    lr, wd, b1, b2, eps = 0.01, 1e-3, 0.9, 0.999, 1e-8
    m = tools.Tiny(n=3, seed=1)
    ref = copy.deepcopy(m)
    opt = _pub(
        m, weight_decay=wd, solve_every=3, between_solves="weighted", weighted_tol=1.0, lr=lr
    )
    tower_opt = torch.optim.Adam(
        [p for ps in ref.tasks() for p in ps], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd
    )
    mom = {k: torch.zeros(sum(p.numel() for p in ref.shared()), dtype=torch.float64) for k in "mv"}
    paths = []
    for step in range(1, 13):
        batch = tools.make_batch(step, n=3)
        opt.step(m.losses(batch))
        paths.append(opt.last.path)
        alpha = torch.tensor(opt.last.alpha, dtype=torch.float64)
        losses = ref.losses(batch)
        theta = tools.flat(ref.shared())
        G = tools.task_grads(losses, ref.shared()) + wd * theta
        bc1, bc2 = 1 - b1**step, 1 - b2**step
        if opt.last.path == "per-task":
            m1 = b1 * mom["m"] + (1 - b1) * G
            v1 = b2 * mom["v"] + (1 - b2) * G * G
            D = (m1 / bc1) / (torch.sqrt(v1 / bc2) + eps)
            u = alpha @ D
        else:
            S = float(alpha.sum())
            gh = alpha @ G
            v_fed = b2 * mom["v"] + (1 - b2) * (gh / S) ** 2
            u = ((b1 * S * mom["m"] + (1 - b1) * gh) / bc1) / (torch.sqrt(v_fed / bc2) + eps)
        feed = alpha @ G + (1 - float(alpha.sum())) * wd * theta
        mom["m"] = b1 * mom["m"] + (1 - b1) * feed
        mom["v"] = b2 * mom["v"] + (1 - b2) * feed * feed
        tower_opt.zero_grad()
        torch.autograd.backward(sum(losses), inputs=[p for ps in ref.tasks() for p in ps])
        tower_opt.step()
        with torch.no_grad():
            new = theta - lr * u
            off = 0
            for p in ref.shared():
                p.copy_(new[off : off + p.numel()].view_as(p))
                off += p.numel()
        for a, b in zip(m.parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    assert paths == ["per-task" if s % 3 == 1 else "weighted" for s in range(1, 13)]


def test_single_task_weighted_equals_per_task_bit_for_bit(tools):
    """n = 1: the loss weight is α₁/S = 1, so ḡ = g₁ and S·Δ(ḡ) = α₁Δ₁ exactly."""
    runs = []
    for mode in ("per-task", "weighted"):
        m = tools.Tiny(n=1, seed=2)
        opt = _pub(m, solve_every=4, weight_decay=1e-4, between_solves=mode, weighted_tol=1.0)
        seen = []
        for step in range(1, 16):
            opt.step(m.losses(tools.make_batch(step, n=1)))
            seen.append(opt.last.path)
        runs.append((_params(m), {k: v.clone() for k, v in opt.shared_state.items()}, seen))
    (p0, s0, seen0), (p1, s1, seen1) = runs
    assert seen0 == ["per-task"] * 15 and seen1.count("weighted") == 11
    assert all(torch.equal(a, b) for a, b in zip(p0, p1))
    assert all(torch.equal(s0[k], s1[k]) for k in s0)


def _one_step_from(tools, mode: str, b2: float, t: int) -> torch.Tensor:
    """The shared-parameter change of one step from a loaded state: moments filled, step count
    ``t``, α known, no solve due."""
    m = tools.Tiny(n=2, seed=3)
    opt = _pub(m, betas=(0.9, b2), solve_every=10**6, between_solves=mode, weighted_tol=1.0)
    sd = opt.state_dict()
    g = torch.Generator().manual_seed(5)
    for k, buf in sd["shared"]["moments"].items():
        rnd = torch.rand(buf.shape, generator=g, dtype=buf.dtype)
        buf.copy_(0.01 * rnd if k == "exp_avg" else 0.5 + rnd)
    sd["shared"]["t"] = t
    sd["extra"]["alpha"] = [0.7, 1.9]
    sd["extra"]["since_solve"] = 1
    opt.load_state_dict(sd)
    before = tools.flat(m.shared())
    opt.step(m.losses(tools.make_batch(0, n=2)))
    assert opt.last.path == mode
    return tools.flat(m.shared()) - before


@pytest.mark.parametrize("one_minus_b2", [1e-4, 1e-7])
def test_weighted_step_tends_to_the_exact_one_as_beta2_tends_to_1(tools, one_minus_b2):
    """With filled moments and t → ∞ the newest gradient's weight in v is 1−β₂, so the two
    steps differ by O(1−β₂): the relative difference divided by 1−β₂ stays bounded."""
    b2, t = 1.0 - one_minus_b2, 10**12
    exact = _one_step_from(tools, "per-task", b2, t)
    weighted = _one_step_from(tools, "weighted", b2, t)
    err = tools.rel(weighted, exact)
    assert 0 < err < 10 * one_minus_b2


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"base": "adagrad"}, "between_solves: 'weighted' is refused with base 'adagrad'"),
        ({"umm": "clippy"}, "refused with umm clippy"),
        ({"umm": "adatask"}, "refused with umm adatask"),
        ({"diagnostics": True}, "refused with diagnostics=True"),
        ({"between_solves": "sometimes"}, "between_solves: must be one of per-task, weighted"),
        ({"weighted_tol": -0.1}, "weighted_tol: must be a number in [0, 1]"),
        ({"weighted_tol": True}, "weighted_tol: must be a number in [0, 1]"),
    ],
)
def test_weighted_is_refused_where_invalid(tools, kw, field):
    m = tools.Tiny(n=2)
    kw = {"between_solves": "weighted", **kw}
    with pytest.raises(InputError) as e:
        _pub(m, **kw)
    assert field in str(e.value)


def test_weighted_is_refused_with_plain_tensors(tools):
    m = tools.Tiny(n=2)
    with pytest.raises(InputError, match="^plain: "):
        _pub(m, between_solves="weighted", plain=[m.emb.weight])


def test_weighted_refuses_task_parameters_reached_by_another_loss(tools):
    """Task 1's tower also feeds task 0's loss: rescaling its gradient would be wrong."""
    m = tools.Tiny(n=2)
    opt = _pub(m, between_solves="weighted", weighted_tol=1.0, solve_every=5)
    opt.step(m.losses(tools.make_batch(1)))
    x, idx, y = tools.make_batch(2)
    losses = m.losses((x, idx, y))
    losses[0] = losses[0] + m.towers[1].bias.sum() ** 2
    with pytest.raises(InputError, match=r"task_params\[1\] reached by task 1's loss only"):
        opt.step(losses)


def test_schedule_follows_the_newest_gradient_weight(tools):
    """Weighted exactly on steps with no solve due and (1−β₂)/(1−β₂ᵗ) ≤ weighted_tol."""
    b2, tol, k = 0.95, 0.1, 4
    m = tools.Tiny(n=2)
    opt = _pub(m, betas=(0.9, b2), solve_every=k, between_solves="weighted", weighted_tol=tol)
    got = []
    for step in range(1, 41):
        opt.step(m.losses(tools.make_batch(step)))
        got.append(opt.last.path)
    want = [
        "weighted" if (s - 1) % k and (1 - b2) / (1 - b2**s) <= tol else "per-task"
        for s in range(1, 41)
    ]
    assert got == want and "weighted" in want and want[:10].count("weighted") == 0


def _train(tools, m, opt, steps):
    for step in steps:
        opt.step(m.losses(tools.make_batch(step)))


def test_weighted_resumes_bit_for_bit(tools):
    kw = dict(solve_every=3, between_solves="weighted", weighted_tol=1.0, weight_decay=1e-4)
    m = tools.Tiny(n=2, seed=4)
    opt = _pub(m, **kw)
    _train(tools, m, opt, range(1, 15))
    m2 = tools.Tiny(n=2, seed=4)
    opt2 = _pub(m2, **kw)
    _train(tools, m2, opt2, range(1, 8))
    buf = io.BytesIO()
    torch.save({"model": m2.state_dict(), "opt": opt2.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    m3 = tools.Tiny(n=2, seed=99)
    m3.load_state_dict(saved["model"])
    opt3 = _pub(m3, **kw)
    opt3.load_state_dict(saved["opt"])
    _train(tools, m3, opt3, range(8, 15))
    assert all(torch.equal(a, b) for a, b in zip(_params(m), _params(m3)))
    assert all(torch.equal(opt.shared_state[k], opt3.shared_state[k]) for k in opt.shared_state)


def test_row_wise_tables_take_the_weighted_step_like_dense_ones(tools):
    """The embedding table row by row (touched rows + the shared untouched-row update) gives
    the dense weighted step."""
    kw = dict(solve_every=3, between_solves="weighted", weighted_tol=1.0, weight_decay=1e-3)
    out = []
    for rows in (False, True):
        m = tools.Tiny(n=3, seed=6)
        opt = _pub(m, row_wise=[m.emb.weight] if rows else (), **kw)
        paths = []
        for step in range(1, 11):
            opt.step(m.losses(tools.make_batch(step, n=3)))
            paths.append(opt.last.path)
        out.append((_params(m), paths))
    assert out[0][1] == out[1][1] and "weighted" in out[0][1]
    for a, b in zip(out[0][0], out[1][0]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_weighted_with_fixed_alpha_uses_one_backward_every_step(tools):
    """fixed_alpha never solves, so every step is weighted (tol 1); a hook on a shared leaf
    counts its gradient computations: one per step, against n on the per-task path."""
    counts = {}
    for mode in ("per-task", "weighted"):
        m = tools.Tiny(n=3)
        opt = _pub(m, fixed_alpha=[1.0, 3.0, 0.5], between_solves=mode, weighted_tol=1.0)
        calls = []
        m.trunk.weight.register_hook(lambda g, calls=calls: calls.append(1))
        for step in range(1, 5):
            opt.step(m.losses(tools.make_batch(step, n=3)))
            assert opt.last.path == mode and opt.last.status == "fixed"
        counts[mode] = len(calls)
    assert counts == {"per-task": 12, "weighted": 4}
