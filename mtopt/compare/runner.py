"""Runs of ``mtopt compare-solvers``: every registered backend on the seeded scenarios.

Every registered solver backend (plugins included) is run on the same seeded Gram matrices.
Per (scenario, n) cell each backend runs over all its instances back to back (warm caches, as
in a training loop that calls one solver), and the backends alternate cell by cell within a
few seconds at most, so slow drifts of load on a shared machine affect them alike.
``seconds`` is each backend's own ``SolveResult.seconds``: the time to compute α,
excluding input validation, one-time compilation and the final certificate, which
:func:`mtopt.solvers.solve` computes identically for every backend.

Scenarios: :mod:`mtopt.compare.scenarios`.

``ccp_conics`` runs the built-in CVXPY backends (``ccp``, ``ccp-raw``) once per conic solver
(:mod:`mtopt.solvers.conic`), as separate rows: ``ccp`` (ECOS, the paper's and the default),
``ccp[clarabel]``, ``ccp-raw[clarabel]``.

A row *fails* when its status is not the expected one (``ok``; ``pareto_stationary`` for
``opposite``) or the backend raised (status ``error``; the exception text is kept in the
summary). Nothing is swallowed silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtopt.compare.scenarios import SCENARIOS, make_gram
from mtopt.errors import InputError

REFERENCE = "ccp"
#: the built-in backends that take the ``conic`` option
CONIC_BACKENDS = ("ccp", "ccp-raw")
ROW_KEYS = ("solver", "scenario", "n", "instance", "seconds", "residual", "status", "iterations")


@dataclass
class CompareConfig:
    """What to run. ``heavy_instances`` caps instances for backends registered ``heavy``."""

    ns: Sequence[int] = (2, 3, 5, 10)
    instances: int = 100
    heavy_instances: int = 30
    scenarios: Sequence[str] = SCENARIOS
    seed: int = 0
    solvers: Sequence[str] | None = None
    tol: float = 1e-6
    ccp_conics: Sequence[str] = ("ecos",)

    def check(self) -> None:
        """Raise :class:`InputError` for values that cannot run."""
        if not self.ns or any(int(n) < 1 for n in self.ns):
            raise InputError("ns: give task counts >= 1, e.g. ns=(2, 3, 5, 10)")
        if self.instances < 1:
            raise InputError("instances: must be >= 1")
        if self.heavy_instances < 1:
            raise InputError("heavy_instances: must be >= 1")
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise InputError(
                    f"scenarios: unknown scenario {s!r}; pick from {', '.join(SCENARIOS)}"
                )
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise InputError("tol: must be a positive finite number")
        from mtopt.solvers.conic import CONICS

        bad = [c for c in self.ccp_conics if c not in CONICS]
        if bad or not self.ccp_conics:
            raise InputError(
                f"ccp_conics: pick one or more of {', '.join(CONICS)}, got "
                f"{', '.join(map(repr, bad)) or 'none'}"
            )


@dataclass
class Backend:
    """A registered solver as compare-solvers sees it: ``name`` labels its rows, ``solver`` is
    the registered name (when it differs, e.g. ``ccp[clarabel]``) and ``options`` go to every
    solve."""

    name: str
    source: str
    heavy: bool
    min_n: int
    max_n: int | None
    solver: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def accepts(self, n: int) -> bool:
        return n >= self.min_n and (self.max_n is None or n <= self.max_n)


def backends(
    names: Sequence[str] | None = None, ccp_conics: Sequence[str] = ("ecos",)
) -> list[Backend]:
    """Registered solvers (plugins included), optionally restricted to ``names``; the
    built-in ``ccp``/``ccp-raw`` once per conic solver in ``ccp_conics``."""
    from mtopt.registry import registry

    entries = registry.entries("solver")
    if names:
        entries = [registry.entry("solver", nm) for nm in names]
    out = []
    for e in entries:
        per_conic = e.name in CONIC_BACKENDS and e.source == "mtopt"
        for conic in ccp_conics if per_conic else ("",):
            label = e.name if conic in ("", "ecos") else f"{e.name}[{conic}]"
            out.append(
                Backend(
                    label,
                    e.source,
                    bool(e.meta.get("heavy", False)),
                    int(e.meta.get("min_n", 1)),
                    None if e.meta.get("max_n") is None else int(e.meta["max_n"]),
                    e.name,
                    {"conic": conic} if conic else {},
                )
            )
    return out


@dataclass
class CompareRun:
    """Rows plus the notes (skips, errors, compile times) of one comparison."""

    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    compile_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0
    backends: list[Backend] = field(default_factory=list)
    config: CompareConfig | None = None


def run(
    config: CompareConfig,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> CompareRun:
    """Run every backend on every instance; ``progress(k)`` is called after k solves.

    Each backend's name is resolved once (on its first solve, inside the error handling, so a
    backend whose import fails gives error rows), then its callable is passed to
    :func:`mtopt.solvers.solve` for every instance.
    """
    from mtopt.registry import registry
    from mtopt.solvers import Backend as SolverBackend
    from mtopt.solvers import solve

    resolved: dict[str, SolverBackend] = {}

    def backend(b: Backend) -> SolverBackend:
        name = b.solver or b.name
        if name not in resolved:
            resolved[name] = SolverBackend.from_entry(registry.entry("solver", name))
        return resolved[name]

    config.check()
    bks = backends(config.solvers, config.ccp_conics)
    out = CompareRun(rows=[], backends=bks, config=config)
    t_start = time.perf_counter()
    ns = [int(n) for n in config.ns]
    for b in bks:
        skipped = [n for n in ns if not b.accepts(n)]
        if skipped:
            rng_txt = f"n = {b.min_n}" if b.max_n == b.min_n else f"n in [{b.min_n}, {b.max_n}]"
            out.notes.append(
                f"{b.name}: skipped for n = {', '.join(map(str, skipped))} (accepts {rng_txt})"
            )
        if b.heavy and config.heavy_instances < config.instances:
            out.notes.append(
                f"{b.name}: CVXPY backend, run on the first {config.heavy_instances} of "
                f"{config.instances} instances per (scenario, n)"
            )
    total = 0
    for n in ns:
        for _ in config.scenarios:
            for b in bks:
                if b.accepts(n):
                    total += min(config.instances, config.heavy_instances if b.heavy else 10**9)
    if on_total is not None:
        on_total(total)
    refused: set[tuple[str, int]] = set()
    for n in ns:
        for scenario in config.scenarios:
            grams = [make_gram(scenario, n, config.seed, k) for k in range(config.instances)]
            for b in bks:
                for k, G in enumerate(grams):
                    if not b.accepts(n) or (b.heavy and k >= config.heavy_instances):
                        continue
                    row: dict[str, Any] = {
                        "solver": b.name,
                        "scenario": scenario,
                        "n": n,
                        "instance": k,
                    }
                    if (b.name, n) in refused:
                        continue
                    try:
                        res = solve(G, backend(b), tol=config.tol, **_options(b))
                    except InputError as exc:
                        if k == 0:  # a backend without min_n/max_n meta refusing this n
                            refused.add((b.name, n))
                            out.notes.append(f"{b.name}: skipped for n = {n} ({exc})")
                            continue
                        key = f"{b.name}/{scenario}/n={n}"
                        out.errors.setdefault(key, f"{type(exc).__name__}: {exc}")
                        row.update(seconds=None, residual=None, status="error", iterations=None)
                    except Exception as exc:  # recorded as a failure row, never hidden
                        key = f"{b.name}/{scenario}/n={n}"
                        out.errors.setdefault(key, f"{type(exc).__name__}: {exc}")
                        row.update(seconds=None, residual=None, status="error", iterations=None)
                    else:
                        if res.compile_seconds:
                            out.compile_seconds[f"{b.name} n={n}"] = (
                                out.compile_seconds.get(f"{b.name} n={n}", 0.0)
                                + res.compile_seconds
                            )
                        row.update(
                            seconds=float(res.seconds),
                            residual=None if res.residual is None else float(res.residual),
                            status=res.status,
                            iterations=int(res.iterations),
                        )
                    out.rows.append(row)
                    if progress is not None:
                        progress(1)
    out.wall_seconds = time.perf_counter() - t_start
    return out


def _options(b: Backend) -> dict[str, Any]:
    # CCP cold starts (from 1, like newton): independent instances make a warm start from the
    # previous instance meaningless; in PUB both ccp and newton may be warm-started.
    if (b.solver or b.name) in CONIC_BACKENDS and b.source == "mtopt":
        return {"warm_start": False, **b.options}
    return dict(b.options)
