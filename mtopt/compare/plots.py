"""PNG plots of a solver comparison (matplotlib, Agg backend; imported only when writing)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mtopt.compare.runner import CompareRun
from mtopt.compare.scenarios import DEGENERATE, SCENARIOS


def plot(result: CompareRun, out_dir: Path, atomic_write: Callable[..., Path]) -> list[Path]:
    """time_vs_n.png (median and p10–p90 per backend) and residuals.png (per scenario)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in result.rows if r["seconds"] is not None]
    names = [b.name for b in result.backends]
    paths = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in names:
        ns, med, lo, hi = [], [], [], []
        for n in sorted({r["n"] for r in rows if r["solver"] == name}):
            ts = [
                r["seconds"]
                for r in rows
                if r["solver"] == name and r["n"] == n and r["scenario"] not in DEGENERATE
            ]
            if ts:
                ns.append(n)
                med.append(np.median(ts))
                lo.append(np.percentile(ts, 10))
                hi.append(np.percentile(ts, 90))
        if ns:
            (line,) = ax.plot(ns, med, marker="o", label=name)
            ax.fill_between(ns, lo, hi, alpha=0.15, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    all_n = sorted({r["n"] for r in rows})
    if all_n:
        ax.set_xticks(all_n)
        ax.set_xticklabels([str(n) for n in all_n])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("n (tasks)")
    ax.set_ylabel("seconds per solve (median, p10–p90)")
    ax.set_title("Solve time vs n (all scenarios but opposite)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(
        atomic_write(out_dir / "time_vs_n.png", lambda fh: fig.savefig(fh, format="png"), "wb")
    )
    plt.close(fig)

    scen = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]
    cols = min(3, max(1, len(scen)))
    nrows = max(1, math.ceil(len(scen) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, s in zip(axes.flat, scen):
        data, labels = [], []
        for name in names:
            rs = [
                max(r["residual"], 1e-17)
                for r in rows
                if r["solver"] == name and r["scenario"] == s and r["residual"] is not None
            ]
            if rs:
                data.append(np.log10(rs))
                labels.append(name)
        if data:
            ax.boxplot(data, showfliers=True)
            ax.set_xticks(range(1, len(labels) + 1))
            ax.set_xticklabels(labels, rotation=30, fontsize=7)
        ax.axhline(-10, color="grey", lw=0.8, ls="--")
        ax.set_title(s, fontsize=9)
        ax.set_ylabel("log10 residual", fontsize=8)
    for ax in list(axes.flat)[len(scen) :]:
        ax.axis("off")
    fig.suptitle("Residual max|a(Ga) - 1| per backend (rows with an alpha)", fontsize=10)
    fig.tight_layout()
    paths.append(
        atomic_write(out_dir / "residuals.png", lambda fh: fig.savefig(fh, format="png"), "wb")
    )
    plt.close(fig)
    return paths
