"""PNG plots of a run (matplotlib, Agg backend): losses, validation AUC, task weights / α."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mtopt.train.logs import read_csv

#: at most this many points per curve (longer logs are thinned evenly)
MAX_POINTS = 2000


def _series(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    xs = [r["step"] for r in rows if r.get(key) is not None and r.get("step") is not None]
    ys = [r[key] for r in rows if r.get(key) is not None and r.get("step") is not None]
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.size < window:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:window] / np.arange(1, window)
    return np.concatenate([head, (c[window:] - c[:-window]) / window])


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.size <= MAX_POINTS:
        return x, y
    idx = np.linspace(0, x.size - 1, MAX_POINTS).round().astype(int)
    return x[idx], y[idx]


def plot_run(out_dir: str | Path, task_names: list[str]) -> list[Path]:
    """Write ``loss.png``, ``auc.png`` and (when weights were logged) ``alpha.png`` in
    ``out_dir/plots`` from ``steps.csv`` and ``metrics.csv``; return the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    steps = read_csv(out / "steps.csv") if (out / "steps.csv").exists() else []
    evals = read_csv(out / "metrics.csv") if (out / "metrics.csv").exists() else []
    pdir = out / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    window = max(1, len(steps) // 50)

    colors = [f"C{i % 10}" for i in range(len(task_names))]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for t, c in zip(task_names, colors):
        x, y = _series(steps, f"loss_{t}")
        if x.size:
            ax.plot(*_thin(x, _smooth(y, window)), color=c, lw=1, label=f"train {t}")
        x, y = _series(evals, f"val_logloss_{t}")
        if x.size:
            ax.plot(x, y, "o--", color=c, label=f"val {t}")
    ax.set_xlabel("step")
    ax.set_ylabel("binary cross-entropy")
    ax.set_yscale("log")
    ax.set_title(f"losses (train: moving average over {window} steps)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pdir / "loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for t, c in zip(task_names, colors):
        x, y = _series(evals, f"val_auc_{t}")
        if x.size:
            ax.plot(x, y, "o-", color=c, label=t)
    x, y = _series(evals, "val_auc_avg")
    if x.size:
        ax.plot(x, y, "s-k", label="average")
    ax.set_xlabel("step")
    ax.set_ylabel("validation AUC")
    ax.set_title("validation AUC per task")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pdir / "auc.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    if any(r.get(f"weight_{t}") is not None for r in steps for t in task_names):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ws: list[float] = []
        for t, c in zip(task_names, colors):
            x, y = _series(steps, f"weight_{t}")
            if x.size:
                ax.plot(*_thin(x, y), color=c, label=t, lw=0.8)
                ws.extend(y.tolist())
        ax.set_xlabel("step")
        ax.set_ylabel("task weight (α for PUB)")
        if ws and min(ws) > 0 and max(ws) / min(ws) > 20:
            ax.set_yscale("log")
        ax.set_title("task weights per step")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = pdir / "alpha.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
