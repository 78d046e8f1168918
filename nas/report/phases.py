"""The phases of a search: which evaluations each strategy made in which mode.

- evolution: the random initial population, then mutations of tournament winners;
- bayesopt: the random initial design, then the surrogate's picks;
- reinforce: quarters of the search (the controller's policy sharpens as it learns);
- random search (or a strategy the report does not know): one phase.

A strategy switches mode once it has been told `population` (or `initial`) scores. In
synchronous rounds every architecture of a round is asked at once, so the switch falls on the
first round after that many; asynchronously on Ray workers, the architectures already in flight
when the last of them is told still count to the first phase (about ``slots - 1`` more).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from matplotlib.figure import Figure

from nas.search import Record


@dataclasses.dataclass(frozen=True)
class Phase:
    """The evaluations with ask index in ``start <= index < stop``."""

    name: str
    start: int
    stop: int


def phases(options: dict, n: int) -> list[Phase]:
    """The non-empty phases of the first `n` asked architectures of a search with `options`."""
    strategy = options["strategy"]
    if strategy in ("evolution", "bayesopt"):
        told = options["population"] if strategy == "evolution" else options["initial"]
        switch = min(_first_asked_after(told, options), n)
        names = {
            "evolution": ("random initial population", "mutations"),
            "bayesopt": ("random initial design", "surrogate-guided"),
        }[strategy]
        split = [Phase(names[0], 0, switch), Phase(names[1], switch, n)]
    elif strategy == "reinforce":
        bounds = [round(n * q / 4) for q in range(5)]
        split = [Phase(f"quarter {q + 1}", bounds[q], bounds[q + 1]) for q in range(4)]
    else:
        split = [Phase(strategy, 0, n)]
    return [p for p in split if p.stop > p.start]


def _first_asked_after(told: int, options: dict) -> int:
    """The ask index of the first architecture asked once `told` scores were told."""
    workers, in_flight = options["workers"], options["in_flight"]
    if workers and not options["sync"]:
        return told + workers * in_flight - 1
    rounds = max(options["batch"], workers * in_flight) if workers else options["batch"]
    return math.ceil(told / rounds) * rounds


def phases_figure(records: list[Record], options: dict) -> Figure:
    """Box plots of the validation scores in each phase, every score drawn over its box."""
    split = phases(options, max(r.index for r in records) + 1)
    fig = Figure(figsize=(max(5.0, 2.2 * len(split) + 1.5), 4.5), layout="constrained")
    ax = fig.subplots()
    labels, positions = [], range(1, len(split) + 1)
    for position, phase in zip(positions, split):
        scores = np.array([r.score for r in records if phase.start <= r.index < phase.stop])
        valid = scores[~np.isnan(scores)]
        if valid.size:
            ax.boxplot(valid, positions=[position], widths=0.5, showfliers=False)
            jitter = np.random.default_rng(position).uniform(-0.12, 0.12, valid.size)
            ax.scatter(position + jitter, valid, s=12, alpha=0.5, color="tab:blue", zorder=3)
        failed = scores.size - valid.size
        counts = f"n={scores.size}" + (f", {failed} failed" if failed else "")
        labels.append(f"{phase.name}\nevaluations {phase.start}-{phase.stop - 1}\n({counts})")
    ax.set_xticks(list(positions), labels)
    ax.set_xlim(0.4, len(split) + 0.6)
    ax.set_ylabel("validation score")
    ax.set_title(f"Scores per phase of the search ({options['strategy']})")
    ax.grid(axis="y", alpha=0.3)
    return fig
