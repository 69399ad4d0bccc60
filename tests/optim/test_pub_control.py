"""PUB's control flow: solve schedule, solver backends, fallbacks, non-finite steps, resume."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

from mtopt.errors import InputError
from mtopt.optim import PUB
from mtopt.registry import registry
from mtopt.solvers import Backend, SolveResult
from mtopt.solvers import solve as solve_registered

CALLS: list[dict] = []


def _counting(G, *, tol, alpha0=None):
    """Delegates to newton; records each call and the warm start it got."""
    CALLS.append({"alpha0": None if alpha0 is None else np.array(alpha0)})
    return solve_registered(G, solver="newton", tol=tol, alpha0=alpha0)


def _no_warm(G, *, tol):
    """A backend without ``alpha0`` in its signature: PUB must not pass one."""
    CALLS.append({"alpha0": "absent"})
    return solve_registered(G, solver="newton", tol=tol)


def _fails_second(G, *, tol):
    """ok on the first call, pareto_stationary on the second, ok afterwards."""
    CALLS.append({})
    if len(CALLS) == 2:
        return SolveResult(None, None, 1, 1e-6, "pareto_stationary", "test-fails-second")
    return solve_registered(G, solver="newton", tol=tol)


def _run(tools, opt, m, steps, start=0, n=2):
    for t in range(start, start + steps):
        opt.zero_grad()
        opt.step(m.losses(tools.make_batch(t, n, m.dtype)))


def test_solve_every_10_solves_ceil_steps_over_10(tools):
    CALLS.clear()
    m = tools.Tiny(n=2, seed=1)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, solver=_counting, solve_every=10)
    alphas = []
    for t in range(25):
        opt.step(m.losses(tools.make_batch(t)))
        alphas.append(tuple(opt.last.alpha))
        assert opt.last.solved == (t % 10 == 0)
    assert len(CALLS) == math.ceil(25 / 10) == opt.stats["solves"]
    assert opt.stats["reuses"] == 22
    assert len({alphas[i] for i in range(10)}) == 1 and alphas[10] != alphas[9]
    # the previous α is passed as warm start to a backend that accepts it
    assert CALLS[0]["alpha0"] is None
    assert np.array_equal(CALLS[1]["alpha0"], np.array(alphas[9]))


def test_solve_every_1_solves_every_step_and_no_warm_start_for_other_backends(tools):
    CALLS.clear()
    m = tools.Tiny(n=2, seed=1)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, solver=_no_warm)
    _run(tools, opt, m, 4)
    assert len(CALLS) == 4 and all(c["alpha0"] == "absent" for c in CALLS)


SOLVERS = [
    pytest.param(s, marks=[pytest.mark.slow] if s.startswith("ccp") else [])  # CVXPY compile
    for s in registry.names("solver")
    if not s.startswith("test")
]


@pytest.mark.parametrize("name", SOLVERS)
def test_every_registered_backend_drives_pub(tools, name):
    """Every registered backend, handed down as the composition root does, drives PUB; each
    backend's α is certified (or counted)."""
    m = tools.Tiny(n=2, seed=2)
    backend = Backend.from_entry(registry.entry("solver", name))
    opt = PUB(m.shared(), m.tasks(), lr=0.01, solver=backend, alpha_scale="exact")
    assert opt.solver == backend.name
    _run(tools, opt, m, 3)
    assert opt.stats["solves"] + opt.stats["fallbacks"] >= 3
    if opt.last.status == "ok":
        assert opt.last.residual <= 1e-6
    assert all(torch.isfinite(p).all() for p in m.parameters())


def _opposite_model(tools):
    m = tools.Tiny(n=2, seed=4)

    def losses(t):
        L = m.losses(tools.make_batch(t))[0]
        return [L, -L]  # exactly opposite gradients on every parameter

    return m, losses


@pytest.mark.parametrize("fallback", ["previous", "skip"])
def test_exactly_opposite_gradients_fall_back_and_stay_finite(tools, fallback):
    m, losses = _opposite_model(tools)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, fallback=fallback)
    before = tools.flat(m.shared())
    for t in range(3):
        opt.step(losses(t))
        assert opt.last.status == "pareto_stationary"
        assert opt.last.action == "skipped" and opt.last.alpha is None
    assert opt.stats["fallbacks"] == 3 and opt.stats["skipped"] == 3
    assert torch.equal(tools.flat(m.shared()), before)  # no α ever: the shared step is skipped
    assert all(torch.isfinite(v).all() for v in opt.shared_state.values())
    assert float(opt.shared_state["exp_avg"].abs().max()) == 0.0  # moments not fed either


@pytest.mark.parametrize("fallback", ["previous", "skip"])
def test_fallback_after_a_good_solve(tools, fallback):
    CALLS.clear()
    m = tools.Tiny(n=2, seed=3)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, solver=_fails_second, fallback=fallback)
    opt.step(m.losses(tools.make_batch(0)))
    a1 = opt.last.alpha
    shared0 = tools.flat(m.shared())
    towers0 = tools.flat([p for ps in m.tasks() for p in ps])
    opt.step(m.losses(tools.make_batch(1)))
    assert opt.stats["fallbacks"] == 1
    moved = not torch.equal(tools.flat(m.shared()), shared0)
    assert not torch.equal(tools.flat([p for ps in m.tasks() for p in ps]), towers0)
    if fallback == "previous":
        assert opt.last.action == "fallback-previous" and opt.last.alpha == a1 and moved
    else:
        assert opt.last.action == "skipped" and opt.last.alpha is None and not moved
        assert opt.stats["skipped"] == 1
    opt.step(m.losses(tools.make_batch(2)))
    assert opt.last.status == "ok"


def test_nonfinite_loss_skips_the_whole_step(tools):
    m = tools.Tiny(n=2, seed=5)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, solve_every=2)
    _run(tools, opt, m, 1)
    snap = [p.detach().clone() for p in m.parameters()]
    moments = {k: v.clone() for k, v in opt.shared_state.items()}
    for t in (1, 2):  # a reuse step and a solve step
        losses = m.losses(tools.make_batch(t))
        losses[1] = losses[1] * float("nan")
        opt.step(losses)
        assert opt.last.action == "nonfinite"
    assert opt.stats["nonfinite"] == 2
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), snap))
    assert all(torch.equal(opt.shared_state[k], v) for k, v in moments.items())
    _run(tools, opt, m, 2, start=3)
    assert opt.last.action == "applied"


CONFIGS = [
    dict(solve_every=3),
    dict(umm="adatask", alpha_scale="exact"),
    dict(umm="clippy", umm_options={"lambda_rel": 0.01, "lambda_abs": 1e-4}),
    dict(base="rmsprop", weight_decay=0.01, diagnostics=True),
    dict(base="adagrad", solve_every=2, umm=["adatask", "clippy"]),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_resume_from_state_dict_is_bitwise_identical(tools, cfg):
    ref = tools.Tiny(n=3, seed=7, dtype=torch.float32)
    ref_opt = PUB(ref.shared(), ref.tasks(), lr=0.01, **cfg)
    _run(tools, ref_opt, ref, 11, n=3)

    m = tools.Tiny(n=3, seed=7, dtype=torch.float32)
    opt = PUB(m.shared(), m.tasks(), lr=0.01, **cfg)
    _run(tools, opt, m, 5, n=3)
    buf = io.BytesIO()
    torch.save({"model": m.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)  # plain containers only (torch's safe loader)
    m2 = tools.Tiny(n=3, seed=99, dtype=torch.float32)  # different init: everything must load
    m2.load_state_dict(saved["model"])
    opt2 = PUB(m2.shared(), m2.tasks(), lr=0.5, **cfg)  # lr restored from the checkpoint too
    opt2.load_state_dict(copy.deepcopy(saved["opt"]))
    _run(tools, opt2, m2, 6, start=5, n=3)
    for p, q in zip(ref.parameters(), m2.parameters()):
        assert torch.equal(p, q)
    assert ref_opt.last.alpha == opt2.last.alpha
    assert ref_opt.stats == opt2.stats
    for k, v in ref_opt.shared_state.items():
        assert torch.equal(v, opt2.shared_state[k])


def test_load_state_dict_rejects_a_different_optimizer(tools):
    m = tools.Tiny(n=2)
    sd = PUB(m.shared(), m.tasks(), base="adam").state_dict()
    with pytest.raises(InputError):
        PUB(m.shared(), m.tasks(), base="rmsprop").load_state_dict(sd)
    with pytest.raises(InputError):
        PUB(m.shared(), m.tasks(), umm="adatask").load_state_dict(sd)
    with pytest.raises(InputError):
        PUB(m.shared()[:2], m.tasks()).load_state_dict(sd)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(alpha_scale="unit"),
        dict(fallback="retry"),
        dict(solve_every=0),
        dict(solver="no-such-solver"),
        dict(base="sgd"),
        dict(base="adagrad", paper_exact=True),
        dict(base="rmsprop", base_options={"momentum": 0.9}),
        dict(umm="no-such-umm"),
        dict(umm="clippy", umm_options={"where": "everywhere"}),
        dict(lr=-1.0),
        dict(eps=0.0),
        dict(betas=(0.9, 1.0)),
        dict(backward="magic"),
    ],
)
def test_bad_arguments_raise_input_error(tools, kwargs):
    m = tools.Tiny(n=2)
    with pytest.raises(InputError):
        PUB(m.shared(), m.tasks(), **kwargs)


def test_bad_parameter_split_and_losses(tools):
    m = tools.Tiny(n=2)
    with pytest.raises(InputError, match="disjoint"):
        PUB(m.shared(), [m.shared()[:1], []])
    with pytest.raises(InputError):
        PUB([], m.tasks())
    opt = PUB(m.shared(), m.tasks())
    with pytest.raises(InputError, match="expected 2"):
        opt.step(m.losses(tools.make_batch(0))[:1])
    with pytest.raises(InputError):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
