"""The toy's outputs: the Markdown summary table and the Fig. 2-style plot of the runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mtopt.toy.methods import LABELS
from mtopt.toy.problem import SCALE, balanced_point, pareto_front


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
        lines.append(f"| {LABELS.get(m, m)} | " + " | ".join(cells) + f" | {hits}/{len(idx)} |")
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
        ax.set_title(f"{LABELS.get(m, m)}  ({hits}/{total} on front)", fontsize=11)
        ax.set_xlabel(r"$L_1$")
        ax.set_ylabel(r"$L_2$")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(methods) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Toy problem: trajectories in loss space (black: start; green o: on the "
                 "front, red x: not)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    from mtopt.io import atomic_write

    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110), "wb")
    finally:
        plt.close(fig)
