"""How well one ranking of architectures agrees with another; confidence intervals over seeds."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats


def top_k_overlap(truth, scores, k: int) -> float:
    """The fraction of the `k` best architectures by `truth` that are among the `k` best by
    `scores` (`k` at most the number of architectures)."""
    k = min(k, len(truth))
    best = set(np.argsort(-np.asarray(truth), kind="stable")[:k])
    picked = set(np.argsort(-np.asarray(scores), kind="stable")[:k])
    return len(best & picked) / k


def agreement(truth, scores) -> dict:
    """Kendall tau, Spearman rho and the top-5 and top-10 overlap of `scores` with `truth`."""
    return {
        "kendall_tau": float(stats.kendalltau(truth, scores)[0]),
        "spearman_rho": float(stats.spearmanr(truth, scores)[0]),
        "top5": top_k_overlap(truth, scores, 5),
        "top10": top_k_overlap(truth, scores, 10),
    }


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float | None]:
    """The mean of `values` and the half-width of its Student-t confidence interval (None for
    a single value)."""
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    t = stats.t.ppf((1 + confidence) / 2, len(values) - 1)
    return mean, float(t * values.std(ddof=1) / np.sqrt(len(values)))


def seed_ceiling(runs) -> float:
    """The mean Kendall tau between stand-alone runs of different seeds, shape (archs, seeds):
    how well one training agrees with another, the most a proxy can be expected to reach."""
    runs = np.asarray(runs)
    pairs = itertools.combinations(range(runs.shape[1]), 2)
    return float(np.mean([stats.kendalltau(runs[:, i], runs[:, j])[0] for i, j in pairs]))
