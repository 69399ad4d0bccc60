"""The two-objective toy problem of PUB's Fig. 2 (the Nash-MTL variant of CAGrad's toy).

Problem (Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021,
toy example; Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, Sec. 6.1,
which scales the first loss by 0.1; Yuan, Cai & Dong, ICDM 2024, Fig. 2). For
``x = (u, y) ∈ R²`` and ``T = tanh(−y)``::

    h₁ = log max(|½(−u−7) − T|, 5e−6) + 6          q₁ = ((u−7)² + 0.1(y+8)²)/10 − 20
    h₂ = log max(|½(−u+3) + T + 2|, 5e−6) + 6      q₂ = ((u+7)² + 0.1(y+8)²)/10 − 20
    c₁ = max(tanh(y/2), 0)                          c₂ = max(tanh(−y/2), 0)
    L₁ = s · (h₁c₁ + q₁c₂),  s = 0.1                L₂ = h₂c₁ + q₂c₂

Protocol (the Nash-MTL authors' toy): Adam, lr 1e-3, 35000 steps, from five initial points
(:data:`STANDARD_STARTS`); the gradient-level methods aggregate the two task gradients and Adam
steps on the aggregate.

**Pareto set (derived; checked against a brute-force grid in tests/toy).** For ``y ≥ 0`` both
losses are ``≥ −6.21`` before scaling (``c₁ ≤ 1``, ``h ≥ log 5e−6 + 6``), while for ``y < 0``
we have ``c₁ = 0`` and ``Lᵢ = t(y)·(qᵢ)`` with ``t(y) = tanh(−y/2) ∈ (0, 1)``, which reaches
``L₂ ≈ −20`` with ``L₁/s < −0.6``; every point with ``y ≥ 0`` is dominated, so the Pareto set lies
in ``y < 0``. The scale ``s`` does not change the set. There, writing ``a(u) = (u−7)²/10 − 20``,
``b(u) = (u+7)²/10 − 20``, ``r(y) = 0.01(y+8)²``, Pareto stationarity
``w∇(L₁/s) + (1−w)∇L₂ = 0`` (``w ∈ [0, 1]``) reads

* in u: ``w(u−7) + (1−w)(u+7) = 0``, i.e. ``u = 14w − 7``, and then ``w a + (1−w) b =
  A(w) = 19.6 w(1−w) − 20``;
* in y: ``φ_w′(y) = 0`` for ``φ_w(y) = t(y)·(A(w) + r(y))``, which has exactly one root
  ``y*(w) < 0`` (a minimum; ``φ_w′ > 0`` near 0⁻, ``< 0`` for ``y ≤ −30``, checked on a grid).

So every Pareto-stationary point of ``y < 0`` is the unique minimiser of the weighted sum
``w L₁/s + (1−w) L₂`` (whose minimum ≤ −15.1 beats anything in ``y ≥ 0``), hence Pareto optimal,
and the Pareto set is the curve ``{(14w − 7, y*(w)) : w ∈ [0, 1]}``; ``y*`` varies from −8.47
(w ∈ {0, 1}) to −8.36 (w = ½) — CAGrad's plot draws it as the segment ``y = −8.3552``. We find
``y*(w)`` by bisection on ``φ_w′`` in float64 (:func:`pareto_y`).

``L*`` (the star of PUB's Fig. 2, not defined in the paper's text): we read it as the point of
the Pareto set with ``u = 0`` (w = ½), the minimiser of the *unscaled* average loss, CAGrad's
star; a method that is invariant to the per-task loss scale sees the same problem as with
``s = 1``, where this point is the symmetric one. :func:`run_toy` reports the distance to it.

Methods (names accepted by :func:`run_toy`, matching ignores case, ``-`` and ``_``):
``ls`` (Adam on ``∇(L₁ + L₂)``), ``mgda``, ``pcgrad``, ``cagrad``, ``imtl_g``, ``nashmtl``
(:func:`mtopt.methods.aggregators.get_aggregator`, then ``torch.optim.Adam`` on the aggregate;
Nash-MTL's α through the training method's policy, :class:`mtopt.optim.balance.Balance`: a
warm-started solve every step, the last α kept when a solve gives none it can trust),
``famo`` (:class:`mtopt.methods.loss.famo.FAMO` on a one-parameter
:class:`~mtopt.models.base.MultiTaskModel` adapter) and ``pub_exact`` / ``pub_frobenius``
(:class:`mtopt.optim.PUB` with ``task_params = [[], []]``). Hyperparameters follow the authors'
toy code: CAGrad ``c = 0.4``; Nash-MTL ``max_norm = 1``; FAMO ``gamma = 0``, ``w_lr = 0.025``,
``max_norm = 1`` and ``min_losses = (−21 s, −21)`` (FAMO's log needs ``Lᵢ − bᵢ > 0``).

Implementation notes. The losses and their gradients are computed analytically in float64
(:func:`value_and_grad`, checked against autograd of the formula in tests/toy) from the float32
parameter ``x`` that Adam updates — about 1 µs a step instead of two autograd passes. FAMO and
PUB take loss *tensors*: they get ``Lᵢ(x₀) + gᵢ·(x − x₀)`` with ``x₀ = x`` detached, whose value
and gradient at the current point are exactly the toy's (first-order methods see nothing else;
the test checks a PUB step on it against a step on the autograd losses).
"""

from __future__ import annotations

# names outside ``__all__`` (noqa: F401) stay reachable as before the split (tests use them)
from mtopt.toy.methods import (  # noqa: F401
    AGGREGATOR_HP,
    FAMO_HP,
    FAMO_MIN_LOSS,
    METHODS,
    _ToyModel,
    resolve_methods,
)
from mtopt.toy.problem import (
    LOWER,  # noqa: F401
    SCALE,
    ParetoFront,
    balanced_point,
    distance_to_front,
    pareto_front,
    pareto_points,
    pareto_y,
    toy_losses,
    value_and_grad,
)
from mtopt.toy.report import plot_runs, summary_table
from mtopt.toy.run import (
    DEFAULT_LR,
    DEFAULT_STEPS,
    DEFAULT_TOL,
    STANDARD_STARTS,
    TRAJECTORY_POINTS,  # noqa: F401
    ToyRun,
    parse_starts,
    run_all,
    run_toy,
)

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_STEPS",
    "DEFAULT_TOL",
    "METHODS",
    "SCALE",
    "STANDARD_STARTS",
    "ParetoFront",
    "ToyRun",
    "balanced_point",
    "distance_to_front",
    "pareto_front",
    "pareto_points",
    "pareto_y",
    "parse_starts",
    "plot_runs",
    "resolve_methods",
    "run_all",
    "run_toy",
    "summary_table",
    "toy_losses",
    "value_and_grad",
]
