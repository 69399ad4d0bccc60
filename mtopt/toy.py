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
(:func:`mtopt.methods.aggregators.get_aggregator`, then ``torch.optim.Adam`` on the aggregate),
``famo`` (:class:`mtopt.methods.loss_weighting.FAMO` on a one-parameter
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

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from mtopt.errors import InputError, RunError
from mtopt.names import normalize

#: scale of the first loss (Nash-MTL's variant of the CAGrad toy)
SCALE = 0.1
#: lower clamp inside the logarithms of the toy
LOWER = 5e-6
#: the five initial points of the Nash-MTL authors' toy code
STANDARD_STARTS: tuple[tuple[float, float], ...] = (
    (-8.5, 7.5),
    (0.0, 0.0),
    (9.0, 9.0),
    (-7.5, -0.5),
    (9.0, -1.0),
)
#: Adam learning rate and number of steps of the authors' protocol
DEFAULT_LR = 1e-3
DEFAULT_STEPS = 35000
#: loss-space distance to the Pareto set below which a run "reached the Pareto front"
DEFAULT_TOL = 1e-2
#: at most this many trajectory points are kept per run (plus the final point)
TRAJECTORY_POINTS = 500

#: canonical method name -> display name
METHODS: dict[str, str] = {
    "ls": "LS",
    "mgda": "MGDA",
    "pcgrad": "PCGrad",
    "cagrad": "CAGrad",
    "imtl_g": "IMTL-G",
    "nashmtl": "Nash-MTL",
    "famo": "FAMO",
    "pub_exact": "PUB (exact α)",
    "pub_frobenius": "PUB (frobenius α)",
}
#: aggregator hyperparameters of the gradient-level methods (the authors' toy defaults)
AGGREGATOR_HP: dict[str, dict[str, Any]] = {
    "mgda": {"normalization": "none"},
    "pcgrad": {"reduction": "sum"},
    "cagrad": {"c": 0.4, "rescale": 1},
    "imtl_g": {},
    "nashmtl": {"max_norm": 1.0},
}
#: FAMO's hyperparameters in the FAMO authors' toy run
FAMO_HP: dict[str, float] = {"gamma": 0.0, "w_lr": 0.025, "max_norm": 1.0}
#: FAMO's loss lower bounds in the FAMO authors' toy run, times (SCALE, 1)
FAMO_MIN_LOSS = -21.0
#: rough relative cost per step (for scheduling the longest runs first)
_COST = {"cagrad": 8.0, "pub_exact": 8.0, "pub_frobenius": 8.0, "nashmtl": 4.0, "famo": 3.0}

_ALIASES = {normalize(k): k for k in METHODS} | {
    "imtl": "imtl_g",
    "nash": "nashmtl",
    "pubexact": "pub_exact",
    "pubfrobenius": "pub_frobenius",
}


def resolve_methods(names: Sequence[str] | None) -> list[str]:
    """Canonical method names (``None``: all of them; ``pub`` expands to both α scales)."""
    if names is None:
        return list(METHODS)
    out: list[str] = []
    for raw in names:
        key = normalize(raw)
        found = ["pub_exact", "pub_frobenius"] if key == "pub" else [_ALIASES.get(key, "")]
        if not found[0]:
            raise InputError(
                f"--methods: unknown method {raw!r} (known: {', '.join(METHODS)}, pub = both)"
            )
        out += [m for m in found if m not in out]
    if not out:
        raise InputError("--methods: give at least one method, e.g. --methods ls,pub")
    return out


def parse_starts(text: str) -> list[tuple[float, float]]:
    """Parse ``"x1,y1;x2,y2;..."`` into finite points; :class:`InputError` on bad input."""
    points: list[tuple[float, float]] = []
    for part in str(text).split(";"):
        if not part.strip():
            continue
        fields = part.split(",")
        try:
            if len(fields) != 2:
                raise ValueError
            x1, x2 = (float(f) for f in fields)
        except ValueError:
            raise InputError(
                f"--starts: {part.strip()!r} is not a point 'x1,x2'; "
                'give points as "x1,x2;x1,x2", e.g. --starts "-8.5,7.5;0,0"'
            ) from None
        if not (math.isfinite(x1) and math.isfinite(x2)):
            raise InputError(f"--starts: {part.strip()!r} is not finite; give finite numbers")
        points.append((x1, x2))
    if not points:
        raise InputError('--starts: no point given; e.g. --starts "-8.5,7.5;0,0"')
    return points


# ---------------------------------------------------------------------------------- problem
def toy_losses(x: Any, scale: float = SCALE) -> np.ndarray:
    """``[..., 2]`` losses ``(L₁, L₂)`` at points ``x`` (``[..., 2]``), float64 numpy."""
    x = np.asarray(x, dtype=np.float64)
    u, y = x[..., 0], x[..., 1]
    T = np.tanh(-y)
    h1 = np.log(np.maximum(np.abs(0.5 * (-u - 7.0) - T), LOWER)) + 6.0
    h2 = np.log(np.maximum(np.abs(0.5 * (-u + 3.0) + T + 2.0), LOWER)) + 6.0
    c1 = np.maximum(np.tanh(0.5 * y), 0.0)
    c2 = np.maximum(np.tanh(-0.5 * y), 0.0)
    r = 0.1 * (y + 8.0) ** 2
    q1 = ((u - 7.0) ** 2 + r) / 10.0 - 20.0
    q2 = ((u + 7.0) ** 2 + r) / 10.0 - 20.0
    return np.stack([scale * (h1 * c1 + q1 * c2), h2 * c1 + q2 * c2], axis=-1)


def value_and_grad(u: float, y: float, scale: float = SCALE) -> tuple[float, ...]:
    """``(L₁, L₂, ∂L₁/∂u, ∂L₁/∂y, ∂L₂/∂u, ∂L₂/∂y)`` at one point, in float64.

    Subgradients follow torch's conventions for the formula (``clamp`` passes the gradient at
    its bound, ``|p|`` has gradient 0 at 0), so that the start ``(0, 0)`` moves as in the
    authors' runs.
    """
    ty = math.tanh(y)
    sech2 = 1.0 - ty * ty
    p1 = -0.5 * u - 3.5 + ty  # ½(−u−7) − tanh(−y)
    p2 = -0.5 * u + 3.5 - ty  # ½(−u+3) + tanh(−y) + 2
    a1, a2 = abs(p1), abs(p2)
    h1 = math.log(max(a1, LOWER)) + 6.0
    h2 = math.log(max(a2, LOWER)) + 6.0
    k1 = 1.0 / p1 if a1 >= LOWER and p1 != 0.0 else 0.0  # d log|p| / dp
    k2 = 1.0 / p2 if a2 >= LOWER and p2 != 0.0 else 0.0
    h1u, h1y = -0.5 * k1, sech2 * k1
    h2u, h2y = -0.5 * k2, -sech2 * k2
    th = math.tanh(0.5 * y)
    dth = 0.5 * (1.0 - th * th)
    c1, c1y = (th, dth) if th >= 0.0 else (0.0, 0.0)
    c2, c2y = (-th, -dth) if -th >= 0.0 else (0.0, 0.0)
    ry = 0.1 * (y + 8.0) ** 2
    q1 = ((u - 7.0) ** 2 + ry) / 10.0 - 20.0
    q2 = ((u + 7.0) ** 2 + ry) / 10.0 - 20.0
    qy = 0.02 * (y + 8.0)
    f1 = scale * (h1 * c1 + q1 * c2)
    f2 = h2 * c1 + q2 * c2
    g1u = scale * (h1u * c1 + 0.2 * (u - 7.0) * c2)
    g1y = scale * (h1y * c1 + h1 * c1y + qy * c2 + q1 * c2y)
    g2u = h2u * c1 + 0.2 * (u + 7.0) * c2
    g2y = h2y * c1 + h2 * c1y + qy * c2 + q2 * c2y
    return f1, f2, g1u, g1y, g2u, g2y


# ---------------------------------------------------------------------------- Pareto front
def _dphi(y: np.ndarray, A: np.ndarray) -> np.ndarray:
    """``φ_w′(y)`` for ``φ_w(y) = t(y)(A + r(y))`` (module docstring)."""
    t = np.tanh(-0.5 * y)
    return -0.5 * (1.0 - t * t) * (A + 0.01 * (y + 8.0) ** 2) + t * 0.02 * (y + 8.0)


def pareto_y(w: Any) -> np.ndarray:
    """``y*(w)``: the root of ``φ_w′`` in ``[−30, −1]`` (bisection in float64, to round-off)."""
    w = np.asarray(w, dtype=np.float64)
    A = 19.6 * w * (1.0 - w) - 20.0
    lo = np.full(w.shape, -30.0)  # φ' < 0 here
    hi = np.full(w.shape, -1.0)  # φ' > 0 here
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        neg = _dphi(mid, A) < 0.0
        lo = np.where(neg, mid, lo)
        hi = np.where(neg, hi, mid)
    return 0.5 * (lo + hi)


def pareto_points(w: Any) -> np.ndarray:
    """Points ``(14w − 7, y*(w))`` of the Pareto set, ``[..., 2]``."""
    w = np.asarray(w, dtype=np.float64)
    return np.stack([14.0 * w - 7.0, pareto_y(w)], axis=-1)


@dataclass
class ParetoFront:
    """The Pareto set sampled at weights ``w`` (parameter space) and its image (loss space)."""

    w: np.ndarray
    points: np.ndarray
    losses: np.ndarray


def pareto_front(n: int = 2001, scale: float = SCALE) -> ParetoFront:
    """``n`` points of the Pareto set, evenly spaced in ``w ∈ [0, 1]`` (``u = 14w − 7``)."""
    w = np.linspace(0.0, 1.0, int(n))
    pts = pareto_points(w)
    return ParetoFront(w=w, points=pts, losses=toy_losses(pts, scale))


@lru_cache(maxsize=4)
def _dense_front(scale: float) -> ParetoFront:
    return pareto_front(20001, scale)


def balanced_point(scale: float = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """``(x*, L*)``: the Pareto point with ``u = 0`` (w = ½), our reading of Fig. 2's star."""
    p = pareto_points(0.5)
    return p, toy_losses(p, scale)


def distance_to_front(losses: Any, scale: float = SCALE) -> tuple[float, float, np.ndarray]:
    """``(distance, w, nearest)``: Euclidean distance in loss space from ``losses`` (2,) to the
    Pareto front, the weight ``w`` of the nearest front point and that point's losses.

    Nearest of 20001 front samples, refined by projecting on the two adjacent chords; the
    nearest point is then recomputed exactly at the interpolated ``w`` (error ~1e-6).
    """
    p = np.asarray(losses, dtype=np.float64).reshape(2)
    front = _dense_front(float(scale))
    F, W = front.losses, front.w
    k = int(np.argmin(np.sum((F - p) ** 2, axis=1)))
    best_w, best_d = float(W[k]), math.inf
    for j in (k - 1, k):
        if j < 0 or j + 1 >= len(W):
            continue
        a, ab = F[j], F[j + 1] - F[j]
        t = min(max(float((p - a) @ ab) / max(float(ab @ ab), 1e-300), 0.0), 1.0)
        d = float(np.linalg.norm(a + t * ab - p))
        if d < best_d:
            best_d, best_w = d, float(W[j] + t * (W[j + 1] - W[j]))
    near = toy_losses(pareto_points(best_w), scale)
    return float(np.linalg.norm(near - p)), best_w, near


# ---------------------------------------------------------------------------------- runner
@dataclass
class ToyRun:
    """One run: a method from one initial point (a row of ``toy.json``)."""

    method: str
    start_index: int
    start: list[float]
    steps: int
    lr: float
    seed: int
    final_point: list[float]
    final_losses: list[float]
    #: loss-space distance to the Pareto front, and whether it is ≤ ``tol``
    distance_to_pareto: float
    reached_pareto: bool
    tol: float
    #: nearest Pareto point: its weight w (u = 14w − 7) and its losses
    nearest_w: float
    nearest_losses: list[float]
    #: loss-space distance to L* (:func:`balanced_point`)
    distance_to_balanced: float
    #: wall-clock and CPU (this process) seconds of the steps
    seconds: float
    cpu_seconds: float
    #: method counters (e.g. PUB's solves / fallbacks, Nash-MTL's fallbacks)
    stats: dict[str, Any] = field(default_factory=dict)
    #: subsampled trajectory: step numbers, points and losses (the final step included)
    trajectory: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _ToyModel:
    """Factory of the :class:`~mtopt.models.base.MultiTaskModel` adapter FAMO expects."""

    @staticmethod
    def make(x0: Sequence[float]) -> Any:
        import torch

        from mtopt.models.base import MultiTaskModel

        class ToyModel(MultiTaskModel):
            """Two tasks sharing one parameter ``x ∈ R²`` (no task-specific parameters)."""

            def __init__(self) -> None:
                super().__init__()
                self.n_tasks = 2
                self.task_names = ["L1", "L2"]
                self.x = torch.nn.Parameter(torch.tensor(list(x0), dtype=torch.float32))

            def shared_parameters(self) -> list[torch.nn.Parameter]:
                return [self.x]

            def task_parameters(self, i: int) -> list[torch.nn.Parameter]:
                return []

            def forward(self, batch: dict) -> torch.Tensor:  # pragma: no cover - unused
                raise NotImplementedError("the toy model has no batches")

        return ToyModel()


def _stepper(
    method: str, x0: Sequence[float], lr: float, seed: int, scale: float
) -> tuple[Any, Callable[[], None], Callable[[], dict[str, Any]]]:
    """``(x, step, stats)`` for one run: ``x`` the float32 parameter, ``step()`` one step."""
    import torch

    model = None
    if method == "famo":
        model = _ToyModel.make(x0)
        x = model.x
    else:
        x = torch.tensor([float(v) for v in x0], dtype=torch.float32, requires_grad=True)
    Jnp = np.zeros((2, 2), dtype=np.float32)
    J = torch.from_numpy(Jnp)  # shares memory with Jnp: row i = ∇Lᵢ at the current x
    fvals = np.zeros(2, dtype=np.float32)
    F = torch.from_numpy(fvals)

    def grads() -> None:
        u, y = x.detach().tolist()
        f1, f2, a, b, c, d = value_and_grad(u, y, scale)
        fvals[0], fvals[1] = f1, f2
        Jnp[0, 0], Jnp[0, 1], Jnp[1, 0], Jnp[1, 1] = a, b, c, d

    def surrogate_losses() -> list[Any]:
        # value Lᵢ(x₀) and gradient gᵢ at x₀ = the current point (see the module docstring)
        lin = torch.mv(J.clone(), x - x.detach()) + F.clone()
        return [lin[0], lin[1]]

    if method == "famo":
        from mtopt.methods.base import OptimizerConfig
        from mtopt.methods.loss_weighting import FAMO

        cfg = OptimizerConfig(name="adam", lr=lr, weight_decay=0.0)
        famo = FAMO(model, cfg, seed=seed, **FAMO_HP)  # type: ignore[arg-type]
        famo.min_losses = torch.tensor([FAMO_MIN_LOSS * scale, FAMO_MIN_LOSS], dtype=torch.float64)
        last: dict[str, Any] = {}

        def famo_step() -> None:
            grads()
            # no closure: FAMO updates its logits at the next step from that step's losses,
            # as the FAMO authors' toy loop does (same values here: the problem is deterministic)
            last["weights"] = famo.step(surrogate_losses()).weights

        return x, famo_step, lambda: {"final_weights": last.get("weights")}

    if method in ("pub_exact", "pub_frobenius"):
        from mtopt.optim import PUB

        pub = PUB([x], [[], []], lr=lr, base="adam", alpha_scale=method.split("_", 1)[1])

        def pub_step() -> None:
            grads()
            pub.step(surrogate_losses())

        def pub_stats() -> dict[str, Any]:
            return {**pub.stats, "final_alpha": pub.last.alpha}

        return x, pub_step, pub_stats

    if method != "ls" and method not in AGGREGATOR_HP:
        raise InputError(f"method: unknown toy method {method!r} (known: {', '.join(METHODS)})")
    opt = torch.optim.Adam([x], lr=lr)
    counters: dict[str, Any] = {}
    if method == "ls":

        def direction() -> Any:
            return J.sum(0)

    else:
        from mtopt.methods.aggregators import get_aggregator
        from mtopt.methods.aggregators.base import combine

        agg = get_aggregator(method, **AGGREGATOR_HP[method])
        gen = torch.Generator().manual_seed(seed)
        prev: list[Any] = [None]
        if method == "nashmtl":
            counters["fallbacks"] = 0

        def direction() -> Any:
            d, w = agg(J, generator=gen)
            if method == "nashmtl":
                # no α (Pareto-stationary input): keep the last α, as the training method
                # mtopt.methods.gradient.NashMTL does, with the aggregator's clipping
                if w is None:
                    counters["fallbacks"] += 1
                    if prev[0] is not None:
                        d = combine(prev[0], J)
                        norm = float(torch.linalg.vector_norm(d.to(torch.float64)))
                        if norm > agg.max_norm > 0:
                            d = d * (agg.max_norm / (norm + 1e-6))
                else:
                    prev[0] = w.numpy()
            return d

    def grad_step() -> None:
        grads()
        x.grad = direction()
        opt.step()

    return x, grad_step, lambda: dict(counters)


def run_toy(
    method: str,
    start: Sequence[float],
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    scale: float = SCALE,
    tol: float = DEFAULT_TOL,
    start_index: int = 0,
    trajectory_points: int = TRAJECTORY_POINTS,
    progress: Callable[[int], None] | None = None,
) -> ToyRun:
    """Run ``method`` (see the module docstring) from ``start`` for ``steps`` Adam steps.

    ``progress(k)`` is called with the number of steps done since its previous call (every
    1000 steps and at the end). Seeds torch with ``seed`` (PCGrad's order; FAMO).
    """
    import torch

    method = resolve_methods([method])[0]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"--steps: must be an integer ≥ 1, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr: must be a positive number, got {lr!r}")
    torch.manual_seed(seed)
    x, step, stats = _stepper(method, start, float(lr), int(seed), float(scale))
    every = max(1, -(-steps // max(1, trajectory_points)))
    rec_steps: list[int] = []
    rec_x: list[list[float]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    done = 0
    for t in range(steps):
        if t % every == 0:
            rec_steps.append(t)
            rec_x.append(x.detach().tolist())
        step()
        if progress is not None and (t + 1) % 1000 == 0:
            progress(t + 1 - done)
            done = t + 1
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if progress is not None and done < steps:
        progress(steps - done)
    final = x.detach().tolist()
    rec_steps.append(steps)
    rec_x.append(final)
    if not all(math.isfinite(v) for v in final):
        raise RunError(f"{method} from {list(start)}: the point became non-finite")
    traj_losses = toy_losses(np.asarray(rec_x), scale)
    fl = traj_losses[-1]
    dist, w, near = distance_to_front(fl, scale)
    _, lstar = balanced_point(scale)
    return ToyRun(
        method=method,
        start_index=int(start_index),
        start=[float(v) for v in start],
        steps=steps,
        lr=float(lr),
        seed=int(seed),
        final_point=[float(v) for v in final],
        final_losses=[float(v) for v in fl],
        distance_to_pareto=dist,
        reached_pareto=bool(dist <= tol),
        tol=float(tol),
        nearest_w=w,
        nearest_losses=[float(v) for v in near],
        distance_to_balanced=float(np.linalg.norm(fl - lstar)),
        seconds=seconds,
        cpu_seconds=cpu,
        stats=stats(),
        trajectory={
            "step": rec_steps,
            "x": [[_g7(a), _g7(b)] for a, b in rec_x],
            "losses": [[_g7(a), _g7(b)] for a, b in traj_losses],
        },
    )


def _g7(v: float) -> float:
    """``v`` to 7 significant digits (float32 resolution; keeps toy.json small)."""
    return float(f"{float(v):.7g}")


# ------------------------------------------------------------------------------ many runs
_QUEUE: Any = None


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue
    import torch

    torch.set_num_threads(1)


def _worker(kwargs: dict[str, Any]) -> dict[str, Any]:
    queue = _QUEUE
    cb = None if queue is None else queue.put
    return run_toy(progress=cb, **kwargs).to_dict()


def run_all(
    methods: Sequence[str] | None = None,
    starts: Sequence[Sequence[float]] | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    scale: float = SCALE,
    tol: float = DEFAULT_TOL,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every (method, start) run, in ``jobs`` processes; rows ordered by method, then start.

    ``progress(k)`` receives step counts as they complete (total ``len(methods)·len(starts)·
    steps``). Results do not depend on ``jobs``.
    """
    names = resolve_methods(methods)
    pts = [tuple(float(v) for v in s) for s in (starts or STANDARD_STARTS)]
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs: must be an integer ≥ 1, got {jobs!r}")
    units = [
        {
            "method": m,
            "start": list(p),
            "start_index": i,
            "steps": steps,
            "lr": lr,
            "seed": seed,
            "scale": scale,
            "tol": tol,
        }
        for m in names
        for i, p in enumerate(pts)
    ]
    order = {(u["method"], u["start_index"]): k for k, u in enumerate(units)}
    if jobs == 1 or len(units) == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            rows = [run_toy(progress=progress, **u).to_dict() for u in units]
        finally:
            torch.set_num_threads(threads)
        return rows

    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    # longest runs first (LPT scheduling)
    todo = sorted(units, key=lambda u: -_COST.get(u["method"], 1.0))
    rows: list[dict[str, Any]] = []
    workers = min(jobs, len(units), os.cpu_count() or jobs)
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(q,)
    ) as ex:
        pending = {ex.submit(_worker, u) for u in todo}

        def drain() -> None:
            while True:
                try:
                    k = q.get_nowait()
                except queue_mod.Empty:
                    return
                if progress is not None:
                    progress(k)

        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            drain()
            for fut in finished:
                rows.append(fut.result())
        time.sleep(0.05)
        drain()
    rows.sort(key=lambda r: order[(r["method"], r["start_index"])])
    return rows


# ---------------------------------------------------------------------------------- output
def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table: method × start, ``✓``/``✗`` (reached the front) and the distance."""
    starts: dict[int, list[float]] = {}
    for r in rows:
        starts.setdefault(r["start_index"], r["start"])
    idx = sorted(starts)
    head = "| method | " + " | ".join(f"({starts[i][0]:g}, {starts[i][1]:g})" for i in idx)
    lines = [head + " | reached |", "|---" * (len(idx) + 2) + "|"]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        cells = []
        hits = 0
        for i in idx:
            r = next((r for r in rows if r["method"] == m and r["start_index"] == i), None)
            if r is None:
                cells.append("")
                continue
            hits += bool(r["reached_pareto"])
            mark = "✓" if r["reached_pareto"] else "✗"
            cells.append(f"{mark} {r['distance_to_pareto']:.2g}")
        lines.append(f"| {METHODS.get(m, m)} | " + " | ".join(cells) + f" | {hits}/{len(idx)} |")
    return "\n".join(lines)


def plot_runs(rows: Sequence[dict[str, Any]], path: Any, scale: float = SCALE) -> None:
    """Trajectories in loss space with the Pareto front, one panel per method (Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    ncol = min(3, len(methods))
    nrow = -(-len(methods) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.8 * nrow), squeeze=False)
    front = pareto_front(1001, scale)
    _, lstar = balanced_point(scale)
    cmap = matplotlib.colormaps["plasma_r"]
    for ax, m in zip(axes.flat, methods):
        ax.plot(front.losses[:, 0], front.losses[:, 1], "-", lw=6, color="#9a9aa0", zorder=1,
                label="Pareto front")  # fmt: skip
        for r in (r for r in rows if r["method"] == m):
            L = np.asarray(r["trajectory"]["losses"])
            ax.scatter(L[:, 0], L[:, 1], c=cmap(np.linspace(0.1, 0.9, len(L))), s=3, zorder=3)
            ax.scatter([L[0, 0]], [L[0, 1]], color="k", s=40, zorder=5)
            ax.scatter([L[-1, 0]], [L[-1, 1]], marker="x" if not r["reached_pareto"] else "o",
                       color="tab:red" if not r["reached_pareto"] else "tab:green", s=40,
                       zorder=6)  # fmt: skip
        ax.scatter([lstar[0]], [lstar[1]], marker="*", s=160, color="gold", edgecolors="k",
                   zorder=7, label="L* (u = 0)")  # fmt: skip
        hits = sum(bool(r["reached_pareto"]) for r in rows if r["method"] == m)
        total = sum(1 for r in rows if r["method"] == m)
        ax.set_title(f"{METHODS.get(m, m)}  ({hits}/{total} on front)", fontsize=11)
        ax.set_xlabel(r"$L_1$")
        ax.set_ylabel(r"$L_2$")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(methods) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Toy problem: trajectories in loss space (black: start; green o: on the "
                 "front, red x: not)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
