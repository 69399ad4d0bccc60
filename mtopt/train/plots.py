"""PNG plots of a run (matplotlib, Agg backend): losses, validation AUC, the ranking metrics
(normalized entropy, GAUC, CVR AUC on clicked rows), task weights / α."""

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
    """Write ``loss.png``, ``auc.png``, ``ranking.png`` (when ``metrics.csv`` has the ranking
    columns) and (when weights were logged) ``alpha.png`` in
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

    path = _ranking_plot(evals, task_names, colors, pdir, plt)
    if path is not None:
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


def _ranking_plot(
    evals: list[dict[str, Any]], task_names: list[str], colors: list[str], pdir: Path, plt: Any
) -> Path | None:
    """``ranking.png``: validation NE per task; GAUC per task and the CVR AUC on clicked rows
    when they were logged. ``None`` (nothing written) for a log without the ranking columns."""
    has = {
        "ne": any(r.get(f"val_ne_{t}") is not None for r in evals for t in task_names),
        "gauc": any(r.get(f"val_gauc_{t}") is not None for r in evals for t in task_names),
        "cvr": any(r.get("val_cvr_auc") is not None for r in evals),
    }
    if not has["ne"]:
        return None
    panels = ["ne"] + [k for k in ("gauc", "cvr") if has[k]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "cvr":
            x, y = _series(evals, "val_cvr_auc")
            ax.plot(x, y, "o-k", label="CVR AUC, clicked rows")
            ax.set_ylabel("validation AUC")
        else:
            for t, c in zip(task_names, colors):
                x, y = _series(evals, f"val_{panel}_{t}")
                if x.size:
                    ax.plot(x, y, "o-", color=c, label=t)
            ax.set_ylabel("validation " + ("normalized entropy" if panel == "ne" else "GAUC"))
        if panel == "ne":
            ax.axhline(1.0, color="0.6", lw=0.8, ls=":")  # the base-rate predictor
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.suptitle("ranking metrics (NE: lower is better, 1 = base rate)")
    fig.tight_layout()
    path = pdir / "ranking.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
