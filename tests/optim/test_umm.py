"""UMMs: Clippy (Tang et al., KDD 2023) and AdaTask (Yang et al., AAAI 2023), in PUB and alone."""

from __future__ import annotations

import pytest
import torch

from mtopt.optim import PUB, AdaTask, ClippyAdam
from mtopt.optim.umm import ClippyUMM


def _per_tensor_clip(X, params, theta, lr, lam_rel, lam_abs):
    """Hand-written Clippy: scale each parameter's block of each row of X (textbook, a loop)."""
    X = X.clone()
    off = 0
    for p in params:
        k = p.numel()
        for r in range(X.shape[0]):
            blk = X[r, off : off + k]
            bound = lam_rel * theta[off : off + k].abs() + lam_abs
            step = lr * blk.abs()
            ratios = [float(b / s) for b, s in zip(bound, step) if s > 0]
            X[r, off : off + k] = blk * min([1.0, *ratios])
        off += k
    return X


def test_clippy_joint_bounds_the_applied_step(tools):
    """Default placement: |Δθ_j| ≤ λ_rel|θ_j| + λ_abs on every shared coordinate, the bound is
    attained in clipped tensors, and the step equals hand-clipped lr·Dα (α from unclipped D)."""
    lam_rel, lam_abs, lr = 0.01, 1e-4, 0.05
    m = tools.Tiny(n=2, seed=11)
    opt = PUB(
        m.shared(),
        m.tasks(),
        lr=lr,
        umm="clippy",
        umm_options={"lambda_rel": lam_rel, "lambda_abs": lam_abs},
        alpha_scale="exact",
    )
    ref = tools.RefRule("adam")
    ref.init(sum(p.numel() for p in m.shared()), torch.float64)
    clipped_any = False
    for t in range(1, 6):
        losses = m.losses(tools.make_batch(t))
        G = tools.task_grads(losses, m.shared())
        theta = tools.flat(m.shared())
        D = ref.dirs(G, t)
        opt.step(losses)
        a = torch.tensor(opt.last.alpha, dtype=torch.float64)
        assert tools.residual(D @ D.T, a) <= 1e-10  # α solved on the unclipped D
        step = theta - tools.flat(m.shared())
        bound = lam_rel * theta.abs() + lam_abs
        assert bool((step.abs() <= bound * (1 + 1e-12)).all())
        want = lr * _per_tensor_clip((a @ D)[None], m.shared(), theta, lr, lam_rel, lam_abs)[0]
        assert tools.rel(step, want) <= 1e-10
        ratio = step.abs() / bound
        clipped_any |= float(ratio.max()) == pytest.approx(1.0, rel=1e-9)
        ref.feed(a @ G)  # moments fed the unclipped Σαᵢgᵢ
        assert tools.rel(opt.shared_state["exp_avg"], ref.state["m"]) <= 1e-12
    assert clipped_any


def test_clippy_task_placement_clips_each_column_before_alpha(tools):
    """where='task' (Alg. 1 line 12): α solves the equation on the clipped columns s(Δθᵢ)."""
    lam_rel, lam_abs, lr = 0.01, 1e-4, 0.05
    m = tools.Tiny(n=3, seed=12)
    umm = ClippyUMM(lambda_rel=lam_rel, lambda_abs=lam_abs, where="task")
    opt = PUB(m.shared(), m.tasks(), lr=lr, umm=umm, alpha_scale="exact")
    ref = tools.RefRule("adam")
    ref.init(sum(p.numel() for p in m.shared()), torch.float64)
    for t in range(1, 4):
        losses = m.losses(tools.make_batch(t, 3))
        G = tools.task_grads(losses, m.shared())
        theta = tools.flat(m.shared())
        D = _per_tensor_clip(ref.dirs(G, t), m.shared(), theta, lr, lam_rel, lam_abs)
        assert bool((lr * D.abs() <= (lam_rel * theta.abs() + lam_abs) * (1 + 1e-12)).all())
        opt.step(losses)
        a = torch.tensor(opt.last.alpha, dtype=torch.float64)
        assert tools.residual(D @ D.T, a) <= 1e-10
        assert tools.rel(theta - tools.flat(m.shared()), lr * (a @ D)) <= 1e-10
        ref.feed(a @ G)
    assert umm.where == "task" and opt._umm_state[0]["min_factor"] < 1.0


def test_clippy_adam_equals_torch_adam_when_the_bound_is_loose(tools):
    m, ref = tools.Tiny(n=2, seed=13), tools.Tiny(n=2, seed=13)
    opt = ClippyAdam(m.parameters(), lr=0.01, weight_decay=0.01, lambda_rel=1e9, lambda_abs=1e9)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=0.01)
    for t in range(20):
        for model, o in ((m, opt), (ref, ref_opt)):
            o.zero_grad()
            sum(model.losses(tools.make_batch(t))).backward()
            o.step()
    assert opt.last_min_factor == 1.0
    assert tools.rel(tools.flat(m.parameters()), tools.flat(ref.parameters())) <= 1e-10


def test_clippy_adam_respects_the_bound_per_tensor(tools):
    lam_rel, lam_abs = 0.001, 1e-5
    m = tools.Tiny(n=2, seed=14)
    opt = ClippyAdam(m.parameters(), lr=0.1, lambda_rel=lam_rel, lambda_abs=lam_abs)
    for t in range(5):
        before = [p.detach().clone() for p in m.parameters()]
        opt.zero_grad()
        sum(m.losses(tools.make_batch(t))).backward()
        opt.step()
        for p, b in zip(m.parameters(), before):
            bound = lam_rel * b.abs() + lam_abs
            assert bool(((b - p.detach()).abs() <= bound * (1 + 1e-12)).all())
        assert opt.last_min_factor < 1.0


def test_adatask_in_pub_keeps_per_task_moments_fed_by_own_gradients(tools):
    """Per-task moments: mᵢ, vᵢ are EMAs of task i's own gᵢ (not αᵢgᵢ); column i is the Adam
    update from (mᵢ, vᵢ) and α solves the equation on those columns."""
    n = 3
    m = tools.Tiny(n=n, seed=15)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, umm="adatask", alpha_scale="exact")
    ref = tools.RefRule("adam")
    d = sum(p.numel() for p in m.shared())
    ref.init(d, torch.float64, rows=n)
    for t in range(1, 6):
        losses = m.losses(tools.make_batch(t, n))
        G = tools.task_grads(losses, m.shared())
        D = ref.dirs(G, t)
        opt.step(losses)
        a = torch.tensor(opt.last.alpha, dtype=torch.float64)
        assert tools.residual(D @ D.T, a) <= 1e-10
        ref.feed(G)
        assert opt.shared_state["exp_avg"].shape == (n, d)
        assert tools.rel(opt.shared_state["exp_avg"], ref.state["m"]) <= 1e-12
        assert tools.rel(opt.shared_state["exp_avg_sq"], ref.state["v"]) <= 1e-12
    # the per-parameter view in opt.state has the task axis first
    assert opt.state[m.trunk.weight]["exp_avg"].shape == (n, *m.trunk.weight.shape)


@pytest.mark.parametrize("base", ["adam", "rmsprop"])
def test_adatask_standalone_sums_per_task_updates(tools, base):
    """AdaTask baseline: shared step −lr·Σᵢ Δθᵢ from per-task moments; towers = torch on Σ L."""
    n, lr = 2, 0.01
    m, ref_m = tools.Tiny(n=n, seed=16), tools.Tiny(n=n, seed=16)
    opt = AdaTask(m.shared(), m.tasks(), lr=lr, base=base)
    ref = tools.RefRule(base)
    ref.init(sum(p.numel() for p in m.shared()), torch.float64, rows=n)
    cls = torch.optim.Adam if base == "adam" else torch.optim.RMSprop
    ref_tp = [p for ps in ref_m.tasks() for p in ps]
    ref_opt = cls(ref_tp, lr=lr)
    for t in range(1, 8):
        batch = tools.make_batch(t)
        with torch.no_grad():
            for p, q in zip(ref_m.shared(), m.shared()):
                p.copy_(q)
        losses = m.losses(batch)
        G = tools.task_grads(losses, m.shared())
        theta = tools.flat(m.shared())
        D = ref.dirs(G, t)
        opt.step(losses)
        assert tools.rel(theta - tools.flat(m.shared()), lr * D.sum(0)) <= 1e-10
        ref.feed(G)
        ref_opt.zero_grad()
        sum(ref_m.losses(batch)).backward()
        ref_opt.step()
    assert opt.last.alpha == [1.0] * n
    tp = [p for ps in m.tasks() for p in ps]
    assert tools.rel(tools.flat(tp), tools.flat(ref_tp)) <= 1e-10
