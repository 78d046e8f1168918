"""The experiment's outputs: the Markdown table and the plot of search progress."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nas.report.run import load_run

NAMES = {
    "reinforce": "reinforce (shared weights)",
    "bayesopt": "bayesopt (shared weights)",
    "random": "random search (stand-alone training)",
    "resnet": "ResNet (hand-designed)",
}


def table(figures: dict, config) -> str:
    """Test accuracy (mean ± std over seeds), size and times of each contender."""
    lines = [
        f"{figures['dataset']}: each contender retrained from scratch with one recipe "
        f"({config.retrain_epochs} epochs, batch {config.batch_size}, SGD-Nesterov at "
        f"{config.learning_rate} with a cosine schedule, augmentation {config.augment}), "
        f"{config.retrain_seeds} seeds; test split used once per seed.",
        "",
        "| contender | test accuracy | parameters | MFLOPs | search minutes (evaluations) "
        "| retrain minutes a seed | cell |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in figures["contenders"].items():
        searched = (
            "—"
            if f["search_minutes"] is None
            else (f"{f['search_minutes']:.1f} ({f['search_evaluations']})")
        )
        lines.append(
            f"| {NAMES.get(name, name)} | {f['test_mean']:.4f} ± {f['test_std']:.4f} "
            f"| {f['params']:,} | {f['flops'] / 1e6:.1f} | {searched} "
            f"| {f['retrain_minutes']:.1f} | `{f['arch']}` |"
        )
    return "\n".join(lines)


def progress_plot(runs: dict[str, Path], path: Path) -> None:
    """The best validation score so far against wall minutes, one line per search."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, run_dir in runs.items():
        run = load_run(run_dir)
        scores = [-math.inf if math.isnan(r.score) else r.score for r in run.records]
        ax.plot(
            np.asarray(run.times) / 60, np.maximum.accumulate(scores), label=NAMES.get(name, name)
        )
    ax.set_xlabel("search wall time (minutes, warm-up included)")
    ax.set_ylabel("best validation accuracy so far\n(shared weights: the supernet's)")
    ax.set_title("Search progress")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
