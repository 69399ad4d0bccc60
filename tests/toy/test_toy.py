"""`mtopt toy` (PUB Fig. 2 analogue): the problem, its Pareto set, the runner and the CLI.

References are independent of mtopt.toy's own code: the loss formula re-typed in torch and
differentiated by autograd, a brute-force Pareto filter on a parameter grid, scipy's minimiser
of the weighted sum, and the plain optimisers stepped by hand on autograd losses.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from mtopt import toy
from mtopt.errors import InputError

PY = sys.executable


def ref_losses(x: torch.Tensor, s: float = 0.1) -> torch.Tensor:
    """The published toy (CAGrad's, first loss times s), written out again in torch."""
    u, y = x[..., 0], x[..., 1]
    h1 = torch.clamp((0.5 * (-u - 7) - torch.tanh(-y)).abs(), 5e-6).log() + 6
    h2 = torch.clamp((0.5 * (-u + 3) + torch.tanh(-y) + 2).abs(), 5e-6).log() + 6
    c1 = torch.clamp(torch.tanh(y * 0.5), 0)
    q1 = ((-u + 7).pow(2) + 0.1 * (-y - 8).pow(2)) / 10 - 20
    q2 = ((-u - 7).pow(2) + 0.1 * (-y - 8).pow(2)) / 10 - 20
    c2 = torch.clamp(torch.tanh(-y * 0.5), 0)
    return torch.stack([s * (h1 * c1 + q1 * c2), h2 * c1 + q2 * c2], dim=-1)


# ------------------------------------------------------------------------------- problem
def test_value_and_grad_matches_autograd():
    rng = np.random.default_rng(0)
    pts = [*rng.uniform(-12, 12, (100, 2)), *toy.STANDARD_STARTS, (0.0, -8.4), (-7.0, 1e-9)]
    for p in pts:
        x = torch.tensor(p, dtype=torch.float64, requires_grad=True)
        f = ref_losses(x)
        g1 = torch.autograd.grad(f[0], x, retain_graph=True)[0]
        g2 = torch.autograd.grad(f[1], x)[0]
        want = np.array([*f.detach().tolist(), *g1.tolist(), *g2.tolist()])
        got = np.array(toy.value_and_grad(*p))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=str(p))
    X = rng.uniform(-12, 12, (50, 2))
    np.testing.assert_allclose(toy.toy_losses(X), ref_losses(torch.tensor(X)).numpy(), atol=1e-12)
    # the start (0, 0) is not stuck: torch's clamp passes the gradient at its bound
    assert abs(toy.value_and_grad(0.0, 0.0)[3]) > 0.5


# --------------------------------------------------------------------------- Pareto set
def _nondominated(L: np.ndarray) -> np.ndarray:
    """Indices of the points of L (N, 2) that no other point weakly dominates (brute force)."""
    order = np.lexsort((L[:, 1], L[:, 0]))
    best = np.inf
    keep = []
    for i in order:
        if L[i, 1] < best:
            keep.append(i)
            best = L[i, 1]
    return np.asarray(keep)


def test_pareto_front_against_brute_force_grid():
    u = np.linspace(-12, 12, 481)
    y = np.concatenate([np.linspace(-14, 12, 521), np.linspace(-8.6, -8.2, 201)])
    X = np.stack(np.meshgrid(u, y), -1).reshape(-1, 2)
    L = toy.toy_losses(X)
    front = toy.pareto_front(401)
    # 1. no feasible grid point dominates a point of our front (it would refute it)
    order = np.argsort(L[:, 0])
    f1s, cummin = L[order, 0], np.minimum.accumulate(L[order, 1])
    k = np.searchsorted(f1s, front.losses[:, 0] - 1e-9, side="left")  # grid f1 < front f1
    dominated = (k > 0) & (cummin[np.maximum(k - 1, 0)] < front.losses[:, 1] - 1e-9)
    assert not dominated.any()
    # 2. the grid's non-dominated points lie on our front, in the derived region
    nd = _nondominated(L)
    assert len(nd) > 100
    P = X[nd]
    assert np.all(P[:, 1] < 0) and np.all(np.abs(P[:, 0]) <= 7.0 + 1e-9)
    d = np.array([toy.distance_to_front(L[i])[0] for i in nd[:: max(1, len(nd) // 200)]])
    assert np.max(d) < 5e-3 and np.median(d) < 1e-3
    # 3. and they cover it from end to end
    assert L[nd, 0].min() < front.losses[:, 0].min() + 0.01
    assert L[nd, 1].min() < front.losses[:, 1].min() + 0.01


def test_pareto_y_is_the_only_stationary_point_and_the_minimiser():
    y = np.linspace(-60, -1e-3, 200001)
    for w in (0.0, 0.1, 0.5, 0.77, 1.0):
        A = 19.6 * w * (1 - w) - 20
        phi = np.tanh(-y / 2) * (A + 0.01 * (y + 8) ** 2)
        dphi = np.diff(phi)
        assert np.count_nonzero(np.diff(np.sign(dphi))) == 1  # one turning point
        assert abs(y[np.argmin(phi)] - toy.pareto_y(w)) < 1e-3
        # weighted sum minimised over both coordinates on a grid near the front
        uu, yy = np.meshgrid(np.linspace(-8, 8, 801), np.linspace(-9, -7.8, 241))
        Lg = toy.toy_losses(np.stack([uu, yy], -1), scale=1.0)
        ws = w * Lg[..., 0] + (1 - w) * Lg[..., 1]
        j = np.unravel_index(np.argmin(ws), ws.shape)
        assert abs(uu[j] - (14 * w - 7)) < 0.03 and abs(yy[j] - toy.pareto_y(w)) < 0.01


def test_distance_to_front_against_dense_sampling():
    dense = toy.pareto_front(100001).losses
    rng = np.random.default_rng(1)
    for p in [*rng.uniform([-2.5, -21], [1, 2], (10, 2)), toy.pareto_front(7).losses[3]]:
        d, w, near = toy.distance_to_front(p)
        ref = np.min(np.linalg.norm(dense - p, axis=1))
        assert d == pytest.approx(ref, abs=1e-5)
        assert np.linalg.norm(near - p) == pytest.approx(d)
        np.testing.assert_allclose(near, toy.toy_losses(toy.pareto_points(w)), atol=1e-12)
        assert 0.0 <= w <= 1.0


# ----------------------------------------------------------------------------- the runner
def test_ls_converges_to_the_minimiser_of_the_sum():
    from scipy.optimize import minimize

    # LS minimises L1 + L2 = s·(L1/s) + L2: the front point with w/(1−w) = s
    w = toy.SCALE / (1 + toy.SCALE)
    target = toy.pareto_points(w)
    res = minimize(lambda p: toy.toy_losses(p).sum(), x0=[-5.0, -7.0], method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})  # fmt: skip
    np.testing.assert_allclose(res.x, target, atol=1e-4)
    run = toy.run_toy("ls", (-5.0, -7.0), steps=800, lr=1e-2)
    assert np.linalg.norm(np.array(run.final_point) - target) < 1e-3
    assert run.distance_to_pareto < run.tol and run.reached_pareto


def _surrogate_check_steps():
    return 4


@pytest.mark.parametrize("scale", ["exact", "frobenius"])
def test_pub_on_the_toy_matches_pub_on_autograd_losses(scale):
    from mtopt.optim import PUB

    start = (-7.5, -0.5)
    n = _surrogate_check_steps()
    x = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    opt = PUB([x], [[], []], lr=0.05, base="adam", alpha_scale=scale)
    for _ in range(n):
        f = ref_losses(x)
        opt.step([f[0], f[1]])
    run = toy.run_toy(f"pub_{scale}", start, steps=n, lr=0.05)
    np.testing.assert_allclose(run.final_point, x.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert run.stats["solves"] == n and run.stats["fallbacks"] == 0


def test_famo_on_the_toy_matches_famo_on_autograd_losses():
    from mtopt.methods.base import OptimizerConfig
    from mtopt.methods.loss.famo import FAMO

    start = (9.0, -1.0)
    n = _surrogate_check_steps()
    model = toy._ToyModel.make(start)
    famo = FAMO(model, OptimizerConfig(lr=0.05, weight_decay=0.0), **toy.FAMO_HP)
    famo.min_losses = torch.tensor([-2.1, -21.0], dtype=torch.float64)
    for _ in range(n):
        f = ref_losses(model.x)
        famo.step([f[0], f[1]])
    run = toy.run_toy("famo", start, steps=n, lr=0.05)
    np.testing.assert_allclose(run.final_point, model.x.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["mgda", "cagrad", "nashmtl"])
def test_gradient_methods_are_aggregate_then_adam(method):
    from mtopt.methods import aggregate

    start = (-8.5, 7.5)
    x = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    adam = torch.optim.Adam([x], lr=0.05)
    for _ in range(3):
        f = ref_losses(x)
        J = torch.stack([torch.autograd.grad(f[i], x, retain_graph=True)[0] for i in range(2)])
        x.grad, _ = aggregate(method, J, **toy.AGGREGATOR_HP[method])
        adam.step()
    run = toy.run_toy(method, start, steps=3, lr=0.05)
    np.testing.assert_allclose(run.final_point, x.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_parse_starts_and_methods():
    assert toy.parse_starts("-8.5,7.5; 0,0;") == [(-8.5, 7.5), (0.0, 0.0)]
    for bad in ("1,2;abc", "1,2,3", "", "nan,1", "1;2"):
        with pytest.raises(InputError, match="^starts: "):
            toy.parse_starts(bad)
    assert toy.resolve_methods(["IMTL-G", "pub", "Nash_MTL", "ls"]) == [
        "imtl_g", "pub_exact", "pub_frobenius", "nashmtl", "ls"
    ]  # fmt: skip
    with pytest.raises(InputError, match="^methods: "):
        toy.resolve_methods(["adam"])


# ------------------------------------------------------------------------------------ CLI
def _mtopt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "mtopt", "toy", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "args, field",
    [(["--starts", "1,2;abc"], "--starts"), (["--methods", "ls,sgd"], "--methods"),
     (["--steps", "0"], "--steps")],
)  # fmt: skip
def test_cli_bad_input_exits_2_with_one_line(tmp_path, args, field):
    p = _mtopt(*args, "--out", str(tmp_path / "o"), "--no-progress")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtopt: error: " + field)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_short_run_writes_json_and_png(tmp_path):
    starts = "-8.5,7.5;-7.5,-0.5"
    methods = "ls,cagrad,famo,pub_exact"
    p = _mtopt("--steps", "40", "--methods", methods, "--starts", starts, "--jobs", "2",
               "--out", str(tmp_path), "--no-progress", "--seed", "3")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "| method |" in p.stdout and "wall time" in p.stdout
    doc = json.loads((tmp_path / "toy.json").read_text())
    assert (tmp_path / "toy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["steps"] == 40 and doc["methods"] == methods.split(",")
    runs = doc["runs"]
    assert [(r["method"], r["start_index"]) for r in runs] == [
        (m, i) for m in methods.split(",") for i in range(2)
    ]
    keys = {"method", "start", "final_point", "final_losses", "distance_to_pareto", "trajectory",
            "reached_pareto", "nearest_w", "distance_to_balanced", "seconds"}  # fmt: skip
    for r in runs:
        assert keys <= set(r)
        nums = [*r["final_point"], *r["final_losses"], r["distance_to_pareto"]]
        assert all(math.isfinite(v) for v in nums)
        assert r["distance_to_pareto"] > r["tol"] and not r["reached_pareto"]  # 40 steps
        tr = r["trajectory"]
        assert tr["step"][0] == 0 and tr["step"][-1] == 40
        assert len(tr["x"]) == len(tr["losses"]) == len(tr["step"])
        np.testing.assert_allclose(tr["x"][0], r["start"])
        np.testing.assert_allclose(tr["losses"][-1], r["final_losses"], rtol=1e-6)
    # two worker processes give what one process gives (seeded, CPU reproducible)
    for r in runs:
        again = toy.run_toy(r["method"], r["start"], steps=40, seed=3)
        assert r["final_point"] == again.final_point, r["method"]
        assert r["trajectory"]["x"] == again.to_dict()["trajectory"]["x"]
