"""Ranking metrics, AUC and list measures agree with small cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from model import metrics
from model.metrics import coverage_at_k, popularity_percentile_at_k, score_lists

RANKED = ["a", "b", "c", "d", "e"]


def test_hit_rate_counts_a_hit_only_inside_the_top_k():
    assert metrics.hit_rate_at_k(RANKED, {"c"}, 2) == 0.0
    assert metrics.hit_rate_at_k(RANKED, {"c"}, 3) == 1.0


def test_mrr_is_the_reciprocal_rank_of_the_first_hit_and_zero_below_k():
    assert metrics.mrr_at_k(RANKED, {"c", "e"}, 5) == pytest.approx(1 / 3)
    assert metrics.mrr_at_k(RANKED, {"e"}, 4) == 0.0


def test_ndcg_with_binary_gains():
    # hits at ranks 2 and 4; ideal puts both relevant items at ranks 1 and 2
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3)
    assert metrics.ndcg_at_k(RANKED, {"b", "d"}, 5) == pytest.approx(dcg / ideal)
    assert metrics.ndcg_at_k(RANKED, {"a"}, 5) == pytest.approx(1.0)
    # more relevant items than k: the ideal is capped at k positions
    assert metrics.ndcg_at_k(RANKED, {"a", "x", "y"}, 1) == pytest.approx(1.0)


def test_precision_divides_by_k_and_recall_by_the_relevant_count():
    assert metrics.precision_at_k(RANKED, {"a", "c", "z"}, 4) == pytest.approx(2 / 4)
    assert metrics.recall_at_k(RANKED, {"a", "c", "z"}, 4) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(RANKED, set(), 4) == 0.0


def test_auc_by_hand_with_a_tie():
    # positives score 0.9 and 0.5, negatives 0.5 and 0.1: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5 half, 0.5>0.1)
    assert metrics.auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(3.5 / 4)
    assert math.isnan(metrics.auc([1, 1], [0.2, 0.3]))


def test_weighted_auc_weights_groups_by_size_and_skips_single_class_groups():
    groups = {
        "perfect": ([1, 0, 0, 0], [0.9, 0.1, 0.2, 0.3]),  # AUC 1, 4 events
        "inverted": ([1, 0], [0.1, 0.9]),  # AUC 0, 2 events
        "no negatives": ([1, 1], [0.5, 0.6]),
    }
    assert metrics.weighted_auc(groups) == pytest.approx((1.0 * 4 + 0.0 * 2) / 6)


def test_score_lists_averages_over_lists_with_a_target_only():
    pairs = [(["a", "b"], {"b"}), (["a", "b"], {"z"}), (["a"], set())]
    scores = score_lists(pairs, ks=(1, 2))
    assert scores[("HR", 2)] == pytest.approx(0.5)
    assert scores[("MRR", 2)] == pytest.approx((0.5 + 0) / 2)
    assert scores[("HR", 1)] == 0.0


def test_coverage_counts_distinct_items_shown_in_the_top_k():
    lists = [["a", "b", "c"], ["a", "d", "e"]]
    assert coverage_at_k(lists, 10, 1) == pytest.approx(0.1)
    assert coverage_at_k(lists, 10, 2) == pytest.approx(0.3)


def test_popularity_percentile_averages_over_shown_items():
    percentiles = {"hit": 100.0, "mid": 50.0}
    assert popularity_percentile_at_k([["hit", "mid", "unknown"]], percentiles, 2) == pytest.approx(75.0)
    assert popularity_percentile_at_k([["hit", "mid", "unknown"]], percentiles, 3) == pytest.approx(50.0)


def test_retrieval_recall_is_the_list_recall_of_each_querys_exact_top_k():
    import numpy as np

    from model.two_tower.retrieval import exact_top_k, retrieval_recall_at_k

    rng = np.random.default_rng(0)
    items = rng.normal(size=(30, 4))
    queries = rng.normal(size=(50, 4))
    positives = rng.integers(1, 30, size=50)
    scores = queries @ items.T
    scores[:, 0] = -np.inf  # row 0 is the unknown item
    ranked = np.argsort(-scores, axis=1)  # a full sort, worked out without the function under test
    by_hand = np.mean([p in row[:5] for row, p in zip(ranked, positives, strict=True)])
    assert 0 not in exact_top_k(queries, items, 5)
    assert retrieval_recall_at_k(queries, items, positives, 5) == pytest.approx(by_hand)
    assert retrieval_recall_at_k(queries, items, positives, 29) == pytest.approx(1.0)  # every known item listed


def test_ks_beyond_a_lists_depth_are_not_reported():
    assert metrics.ks_up_to(20) == (1, 5, 10, 20)
    assert metrics.ks_up_to(100) == metrics.KS
