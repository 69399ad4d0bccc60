"""PUB (Yuan et al., ICDM 2024, Algorithm 1) checked against textbook references, step by step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtopt.optim import PUB

CASES = [
    ("adam", False, {}),
    ("adam", True, {}),
    ("adagrad", False, {"lr_decay": 0.05, "initial_accumulator_value": 0.0}),
    ("rmsprop", False, {"alpha": 0.9}),
    ("rmsprop", True, {}),
]


@pytest.mark.parametrize("base,paper_exact,opts", CASES)
@pytest.mark.parametrize("n", [2, 3])
def test_exact_scale_step_norm_equation_and_moments(tools, base, paper_exact, opts, n):
    """alpha_scale='exact', no weight decay: every step moves the shared parameters by exactly
    lr·√n, the α applied solves DᵀDα = 1/α (D built by hand from our own moments) to 1e-10,
    the step is −lr·Dα, and the moments equal the hand-fed α-weighted values."""
    m = tools.Tiny(n=n, seed=n)
    lr = 0.01
    opt = PUB(
        m.shared(),
        m.tasks(),
        lr=lr,
        base=base,
        alpha_scale="exact",
        paper_exact=paper_exact,
        base_options=opts,
    )
    ref = tools.RefRule(base, paper_exact, **opts)
    d = sum(p.numel() for p in m.shared())
    ref.init(d, torch.float64)
    if base == "adagrad":
        ref.state["S"] += opts["initial_accumulator_value"]
    for t in range(1, 9):
        losses = m.losses(tools.make_batch(t, n))
        G = tools.task_grads(losses, m.shared())
        before = tools.flat(m.shared())
        D = ref.dirs(G, t)  # rows = tasks
        opt.step(losses)
        after = tools.flat(m.shared())
        a = torch.tensor(opt.last.alpha, dtype=torch.float64)
        assert opt.last.status == "ok" and opt.last.action == "applied"
        step = before - after
        assert abs(float(step.norm()) - lr * math.sqrt(n)) <= 1e-10 * lr
        assert tools.residual(D @ D.T, a) <= 1e-10
        assert tools.rel(step, lr * (a @ D)) <= 1e-10
        ref.feed(a @ G)
        for key, mine in zip(ref.state, opt.shared_state.values()):
            assert tools.rel(mine, ref.state[key]) <= 1e-12, key


@pytest.mark.parametrize(
    "base,opts", [("adam", {}), ("adagrad", {"lr_decay": 0.01}), ("rmsprop", {})]
)
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_task_params_match_torch_on_sum_of_losses(tools, base, opts, wd):
    """After 50 steps the towers equal torch.optim.<Rule> run on Σ losses (replaying the same
    shared-parameter trajectory so that the towers see identical inputs)."""
    m = tools.Tiny(n=2, seed=3)
    ref = tools.Tiny(n=2, seed=3)
    opt = PUB(m.shared(), m.tasks(), lr=0.02, base=base, weight_decay=wd, base_options=opts)
    cls = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}
    ref_params = [p for ps in ref.tasks() for p in ps]
    ref_opt = cls[base](ref_params, lr=0.02, weight_decay=wd, **opts)
    for t in range(50):
        batch = tools.make_batch(t)
        with torch.no_grad():
            for p, q in zip(ref.shared(), m.shared()):
                p.copy_(q)
        opt.step(m.losses(batch))
        ref_opt.zero_grad()
        sum(ref.losses(batch)).backward()
        ref_opt.step()
    mine = tools.flat([p for ps in m.tasks() for p in ps])
    assert tools.rel(mine, tools.flat(ref_params)) <= 1e-6


def _first_steps(tools, scale, steps, **kw):
    m = tools.Tiny(n=2, seed=5)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, **kw)
    out = []
    for t in range(steps):
        before = tools.flat(m.shared())
        opt.step(m.losses(tools.make_batch(t), scale=scale))
        out.append(before - tools.flat(m.shared()))
    return out


@pytest.mark.parametrize("alpha_scale", ["exact", "frobenius"])
def test_loss_scale_first_step_invariant_then_not(tools, alpha_scale):
    """DESIGN §2.2: at the first step (zero moments) ×1000 on one loss leaves the shared step
    unchanged up to eps; afterwards the moments, fed Σαᵢgᵢ, are dominated by the big task."""
    a = _first_steps(tools, (1.0, 1.0), 6, alpha_scale=alpha_scale)
    b = _first_steps(tools, (1.0, 1000.0), 6, alpha_scale=alpha_scale)
    assert tools.rel(b[0], a[0]) <= 1e-4  # eps = 1e-8 against gradients ~1e-2…1
    a0 = _first_steps(tools, (1.0, 1.0), 1, alpha_scale=alpha_scale, eps=1e-30)
    b0 = _first_steps(tools, (1.0, 1000.0), 1, alpha_scale=alpha_scale, eps=1e-30)
    assert tools.rel(b0[0], a0[0]) <= 1e-12  # without (effective) eps: exactly invariant
    assert max(tools.rel(y, x) for x, y in zip(a[1:], b[1:])) > 1e-2


def test_loss_scale_invariant_at_every_step_with_adatask(tools):
    """Our AdaTask composition feeds each task's moments its own gradient, so D, α and the
    shared step are invariant to a task's loss scale at every step (up to eps)."""
    a = _first_steps(tools, (1.0, 1.0), 8, umm="adatask")
    b = _first_steps(tools, (1.0, 1000.0), 8, umm="adatask")
    assert max(tools.rel(y, x) for x, y in zip(a, b)) <= 1e-4


def test_frobenius_scales_alpha_by_sqrt_gram_norm(tools):
    """α(G/‖G‖_F) = α(G)·√‖G‖_F (DESIGN §2.3) on the same first step."""
    out = {}
    for scale in ("exact", "frobenius"):
        m = tools.Tiny(n=3, seed=8)
        opt = PUB(m.shared(), m.tasks(), lr=0.01, alpha_scale=scale)
        opt.step(m.losses(tools.make_batch(0, 3)))
        out[scale] = (np.array(opt.last.alpha), opt.last.gram_fro)
    (ae, fro), (af, _) = out["exact"], out["frobenius"]
    assert np.allclose(af, ae * math.sqrt(fro), rtol=1e-10, atol=0)


def test_weight_decay_once_per_step(tools):
    """Each task's update uses gᵢ + wd·θ; the moments are fed Σαᵢgᵢ + wd·θ (the decay once)."""
    m = tools.Tiny(n=2, seed=4)
    wd = 0.3
    opt = PUB(m.shared(), m.tasks(), lr=0.01, weight_decay=wd, alpha_scale="exact")
    ref = tools.RefRule("adam")
    ref.init(sum(p.numel() for p in m.shared()), torch.float64)
    for t in range(1, 5):
        losses = m.losses(tools.make_batch(t))
        theta = tools.flat(m.shared())
        G = tools.task_grads(losses, m.shared())
        D = ref.dirs(G + wd * theta, t)
        opt.step(losses)
        a = torch.tensor(opt.last.alpha, dtype=torch.float64)
        assert tools.residual(D @ D.T, a) <= 1e-10
        assert tools.rel(theta - tools.flat(m.shared()), 0.01 * (a @ D)) <= 1e-10
        ref.feed(a @ G + wd * theta)
        assert tools.rel(opt.shared_state["exp_avg"], ref.state["m"]) <= 1e-12
        assert tools.rel(opt.shared_state["exp_avg_sq"], ref.state["v"]) <= 1e-12


def test_unreached_shared_parameter_gets_zero_gradient(tools):
    """A shared parameter one task does not reach contributes gᵢ = 0 to that task's column."""
    m = tools.Tiny(n=2, seed=6)
    extra = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    opt = PUB([*m.shared(), extra], m.tasks(), lr=0.01, alpha_scale="exact")
    losses = m.losses(tools.make_batch(0))
    losses[0] = losses[0] + (extra**2).sum()
    G = tools.task_grads(losses, [*m.shared(), extra])
    assert G[1, -1] == 0 and G[0, -1] != 0
    before = extra.detach().clone()
    opt.step(losses)
    a0 = opt.last.alpha[0]
    # zero moments: task 0's column at `extra` is g/(|g|+eps) ≈ 1; task 1's is exactly 0
    assert float(before - extra.detach()) == pytest.approx(0.01 * a0, rel=1e-6)


def test_batched_backward_equals_loop(tools):
    ms = [tools.Tiny(n=3, seed=9) for _ in range(2)]
    opts = [
        PUB(m.shared(), m.tasks(), lr=0.01, backward=b) for m, b in zip(ms, ("loop", "batched"))
    ]
    for t in range(4):
        for m, o in zip(ms, opts):
            o.step(m.losses(tools.make_batch(t, 3)))
    for p, q in zip(ms[0].parameters(), ms[1].parameters()):
        assert torch.allclose(p, q, rtol=1e-12, atol=1e-14)


def test_lr_scheduler_drives_shared_and_task_groups(tools):
    m = tools.Tiny(n=2, seed=2)
    opt = PUB(m.shared(), m.tasks(), lr=0.02, alpha_scale="exact")
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for t, lr in enumerate([0.02, 0.01, 0.005]):
        before = tools.flat(m.shared())
        opt.step(m.losses(tools.make_batch(t)))
        assert float((before - tools.flat(m.shared())).norm()) == pytest.approx(
            lr * math.sqrt(2), rel=1e-10
        )
        assert all(g["lr"] == pytest.approx(lr) for g in opt.task_optimizer.param_groups)
        sched.step()


def test_diagnostics_cosines_and_diff(tools):
    """cos(Σαᵢgᵢ, update) on shared params, cos(∇Σ L, update) on towers, Diff eq. (1)."""
    m = tools.Tiny(n=2, seed=1)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, diagnostics=True)
    for t in range(3):
        losses = m.losses(tools.make_batch(t))
        G = tools.task_grads(losses, m.shared())
        tp = [p for ps in m.tasks() for p in ps]
        gt = tools.flat(torch.autograd.grad(sum(losses), tp, retain_graph=True))
        sb, tb = tools.flat(m.shared()), tools.flat(tp)
        opt.step(losses)
        a = torch.tensor(opt.last.alpha, dtype=torch.float64)
        cos = torch.nn.functional.cosine_similarity
        cs = float(cos(a @ G, sb - tools.flat(m.shared()), dim=0))
        ct = float(cos(gt, tb - tools.flat(tp), dim=0))
        dg = opt.last.diagnostics
        assert dg["cos_shared"] == pytest.approx(cs, rel=1e-9)
        assert dg["cos_task"] == pytest.approx(ct, rel=1e-9)
        assert dg["diff"] == pytest.approx(2 * abs(ct - cs) / abs(ct + cs), rel=1e-9)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    base=st.sampled_from(["adam", "adagrad", "rmsprop"]),
    lr=st.floats(1e-4, 1.0),
)
def test_property_first_steps_have_norm_lr_sqrt_n(tools, n, seed, base, lr):
    """For any task count, seed, rule and lr: ‖Δθ_shared‖ = lr·√n at every step (exact scale)."""
    m = tools.Tiny(n=n, seed=seed)
    opt = PUB(m.shared(), m.tasks(), lr=lr, base=base, alpha_scale="exact")
    for t in range(3):
        before = torch.cat([p.detach().reshape(-1) for p in m.shared()])
        opt.step(m.losses(tools.make_batch(seed + t, n)))
        after = torch.cat([p.detach().reshape(-1) for p in m.shared()])
        assert opt.last.residual <= 1e-10
        assert float((before - after).norm()) == pytest.approx(lr * math.sqrt(n), rel=1e-9)


def test_sparse_embedding_gradients_are_densified(tools):
    dense, sparse = tools.Tiny(n=2, seed=10), tools.Tiny(n=2, seed=10)
    sparse.emb.sparse = True
    opts = [PUB(m.shared(), m.tasks(), lr=0.01) for m in (dense, sparse)]
    for t in range(3):
        for m, o in zip((dense, sparse), opts):
            o.step(m.losses(tools.make_batch(t)))
    for p, q in zip(dense.parameters(), sparse.parameters()):
        assert torch.allclose(p, q, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", [2, 3])
def test_frobenius_identical_tasks_take_n_times_the_adam_step(n: int) -> None:
    """With n identical task losses the per-task updates coincide, G/‖G‖_F = 𝟙𝟙ᵀ/n, so α = 1
    and PUB's first shared step is exactly n times the step torch Adam takes on the summed loss
    (Adam is invariant to the loss scale) — the step-size effect docs/pub.md warns about. (Later
    steps are only about n×: the per-task updates mix the moments, fed Σαᵢgᵢ, with one gᵢ.)"""
    torch.manual_seed(0)
    x, y = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, dtype=torch.float64)
    w0 = torch.randn(5, dtype=torch.float64)
    w_pub = w0.clone().requires_grad_(True)
    w_ls = w0.clone().requires_grad_(True)
    pub = PUB([w_pub], [[] for _ in range(n)], lr=1e-2, weight_decay=0.0)
    adam = torch.optim.Adam([w_ls], lr=1e-2)

    def loss(w: torch.Tensor) -> torch.Tensor:
        return ((x @ w - y) ** 2).mean()

    pub.step([loss(w_pub) for _ in range(n)])
    (n * loss(w_ls)).backward()
    adam.step()
    assert pub.last.alpha == pytest.approx([1.0] * n, abs=1e-9)
    # equal up to Adam's eps: n·g/(|g|+eps) against n·g/(n|g|+eps)
    assert torch.allclose(w_pub.detach() - w0, n * (w_ls.detach() - w0), rtol=1e-6, atol=0)
