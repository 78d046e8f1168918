"""Learning curves of a retrained architecture: loss and accuracy per epoch, train and val."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def retrain_runs(metrics: dict) -> list[dict]:
    """The training runs of a retrain's metrics.json: its ``runs``, or itself as one run."""
    runs = metrics.get("runs") or [metrics]
    return [run for run in runs if run.get("history")]


def curves_figure(metrics: dict) -> Figure:
    """Train (solid) and validation (dashed) loss and accuracy per epoch, one color a run;
    a dotted line marks the epoch whose weights were kept, where the run says."""
    runs = retrain_runs(metrics)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        name = f"seed {run['seed']}" if "seed" in run else f"run {i + 1}"
        color = f"C{i % 10}"
        epochs = [h["epoch"] for h in run["history"]]
        for ax, metric in zip(axes, ("loss", "accuracy")):
            for split, style in (("train", "-"), ("val", "--")):
                values = [h[f"{split}_{metric}"] for h in run["history"]]
                ax.plot(epochs, values, style, color=color, label=f"{name}, {split}")
            if run.get("best_epoch"):
                ax.axvline(run["best_epoch"], color=color, ls=":", alpha=0.6)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Retraining the best architecture ({len(runs)} run{'s' * (len(runs) > 1)})")
    return fig
