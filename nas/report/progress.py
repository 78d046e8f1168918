"""The best validation score so far, against evaluations completed and against wall time."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from nas.search import Record


def best_so_far(scores) -> np.ndarray:
    """The running maximum, ignoring NaN (failed) scores; NaN until the first valid one."""
    return np.fmax.accumulate(np.asarray(scores, float))


def progress_figure(records: list[Record], times: list[float]) -> Figure:
    """Two panels: every score and the best so far, by evaluation count and by wall time;
    evaluations without a score (failures) are marked along the bottom."""
    scores = np.array([r.score for r in records])
    minutes = np.nanmax(times) >= 120
    wall = np.asarray(times) / (60 if minutes else 1)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = (
        (np.arange(1, len(records) + 1), "evaluations completed"),
        (wall, f"wall time since the search started ({'min' if minutes else 's'})"),
    )
    failed = np.isnan(scores)
    for ax, (x, label) in zip(axes, panels):
        ax.scatter(x, scores, s=10, alpha=0.35, color="tab:blue", label="evaluation")
        ax.step(x, best_so_far(scores), where="post", color="tab:orange", lw=2, label="best so far")
        if failed.any():
            ax.plot(
                x[failed],
                np.full(failed.sum(), 0.03),
                "x",
                color="tab:red",
                transform=ax.get_xaxis_transform(),
                label=f"failed ({failed.sum()})",
            )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation score")
    axes[0].legend(loc="lower right")
    best = np.nanmax(scores) if (~failed).any() else float("nan")
    fig.suptitle(f"Search progress: best {best:.4f} after {len(records)} evaluations")
    return fig
