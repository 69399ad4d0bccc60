"""The balancing policy (mtopt.optim.balance) and its one Gram routine, shared with the methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtopt.methods.linalg import GRAM_BLOCK
from mtopt.methods.linalg import gram64 as methods_gram64
from mtopt.optim.balance import Balance, BalancePolicy, accepts_alpha0, gram64
from mtopt.solvers import get_solver
from mtopt.solvers.base import SolveResult


def _former_methods_gram64(J: torch.Tensor) -> np.ndarray:
    """mtopt.methods.linalg.gram64 before it called mtopt.optim.balance.gram64."""
    n, d = J.shape
    G = torch.zeros(n, n, dtype=torch.float64)
    for start in range(0, max(d, 1), GRAM_BLOCK):
        block = J[:, start : start + GRAM_BLOCK].to(torch.float64)
        G += block @ block.T
    A = G.numpy()
    return 0.5 * (A + A.T)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n, d", [(1, 0), (2, 3), (3, 700), (5, 20_000), (2, 70_000)])
def test_one_gram_routine_two_summation_orders(dtype, n, d) -> None:
    g = torch.Generator().manual_seed(n * 7 + d)
    J = torch.randn(n, d, generator=g, dtype=dtype) * torch.rand(n, 1, generator=g, dtype=dtype)
    ref = (J.double() @ J.double().T).numpy()
    pub, meth = gram64(J), methods_gram64(J)
    # the methods' order is bitwise the one they had (d ≤ GRAM_BLOCK: one block)
    assert meth.tobytes() == _former_methods_gram64(J).tobytes()
    assert np.array_equal(meth, meth.T)
    # both orders compute D Dᵀ in float64 (they may differ in the last bits)
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.max(np.abs(pub - ref)) <= 1e-12 * scale
    assert np.max(np.abs(meth - ref)) <= 1e-12 * scale


def test_accepts_alpha0_reads_the_backend_signature() -> None:
    assert accepts_alpha0(get_solver("newton"))
    assert not accepts_alpha0(get_solver("closed-form"))
    assert accepts_alpha0(lambda G, **kw: None)
    assert not accepts_alpha0(lambda G, tol: None)


def test_balance_takes_a_resolved_backend_and_checkpoints_its_name() -> None:
    calls = []

    def backend(G, *, tol, alpha0=None):
        calls.append(alpha0)
        a = 1.0 / np.sqrt(np.diag(G))  # exact for a diagonal G
        return SolveResult(a, None, 1, 0.0, "ok", "diag")

    b = Balance(BalancePolicy(alpha_scale="exact"), solver=backend, warm_start=True)
    G = np.diag([4.0, 9.0])
    a, rec = b.weights(lambda: G)
    assert rec.status == "ok" and np.allclose(a, [0.5, 1 / 3])
    b.weights(lambda: G)
    assert calls[0] is None and np.array_equal(calls[1], a)  # warm start from the last α
    assert b.state_dict()["solver"] == "backend"
