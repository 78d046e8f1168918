"""Rank agreement figures and confidence intervals of the ranking study."""

import numpy as np
import pytest
from scipy import stats

from experiments.rank_metrics import agreement, mean_ci, seed_ceiling, top_k_overlap


def test_top_k_overlap_counts_shared_best():
    truth = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert top_k_overlap(truth, truth, 3) == 1.0
    assert top_k_overlap(truth, [0, 1, 2, 3, 4, 5], 3) == 0.0
    assert top_k_overlap(truth, [0.9, 0.1, 0.7, 0.6, 0.5, 0.8], 2) == 0.5
    assert top_k_overlap(truth, truth[::-1], 10) == 1.0  # k above the count: every arch


def test_agreement_of_a_ranking_with_itself_and_its_reverse():
    truth = np.linspace(0.5, 0.9, 12)
    same, reverse = agreement(truth, truth * 2), agreement(truth, -truth)
    assert same == pytest.approx({"kendall_tau": 1, "spearman_rho": 1, "top5": 1, "top10": 1})
    assert reverse["kendall_tau"] == pytest.approx(-1.0) and reverse["top5"] == 0.0


def test_mean_ci_is_the_student_t_interval():
    mean, half = mean_ci([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3))
    assert mean_ci([0.4]) == (0.4, None)


def test_seed_ceiling_averages_the_pairs_of_seeds():
    runs = np.array([[1, 1, 3], [2, 2, 2], [3, 3, 1]], float)  # seeds 0 and 1 agree; 2 reverses
    assert seed_ceiling(runs) == pytest.approx((1 - 1 - 1) / 3)
