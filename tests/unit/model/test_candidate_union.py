"""The batch union (`unions`) against the per-request dictionary loop it replaced, on random answers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from model.hybrid.candidates import CandidateSet, unions
from model.recommender import RankedColumns, RecommendationRequest


def loop_union(request: RecommendationRequest, lists: Mapping[str, RankedColumns], max_candidates: int) -> CandidateSet:
    """One request at a time, a dictionary step per listed item: the reference."""
    index: dict[str, int] = {}
    names = list(lists)
    tops: dict[str, float] = {}
    columns: dict[str, dict[int, tuple[int, float]]] = {}
    for name, (items, scores) in lists.items():
        tops[name] = float(scores[0]) if len(items) else 0.0
        columns[name] = {}
        for rank, (item, score) in enumerate(zip(items, scores, strict=True)):
            if item in request.exclude:
                continue
            row = index.setdefault(item, len(index))
            columns[name].setdefault(row, (rank, float(score)))  # the first listing counts
    n = len(index)
    ranks = np.full((len(names), n), -1, np.int32)
    values = np.zeros((len(names), n))
    for s, name in enumerate(names):
        for row, (rank, score) in columns[name].items():
            ranks[s, row], values[s, row] = rank, score
    items = list(index)
    if n > max_candidates:
        fused = np.where(ranks >= 0, 1.0 / (60.0 + ranks), 0.0).sum(axis=0)
        keep = np.argsort(-fused, kind="stable")[:max_candidates]
        items, ranks, values = [items[j] for j in keep], ranks[:, keep], values[:, keep]
    return CandidateSet(request, items, dict(zip(names, ranks, strict=True)), dict(zip(names, values, strict=True)),
                        tops)


def _random_batch(seed: int, n_requests: int = 60, catalogue: int = 40):
    rng = np.random.default_rng(seed)
    names = ["knn", "cooc", "als"]
    requests, answers = [], {name: [] for name in names}
    for j in range(n_requests):
        exclude = frozenset(f"i{x}" for x in rng.choice(catalogue, int(rng.integers(0, 6)), replace=False))
        requests.append(RecommendationRequest(f"u{j}", 5, exclude=exclude))
        for name in names:
            length = int(rng.integers(0, 25))  # some lists empty, some repeat an item, some list excluded items
            items = [f"i{x}" for x in rng.integers(0, catalogue, length)]
            scores = np.sort(rng.random(length))[::-1]
            answers[name].append(RankedColumns(items, scores if rng.random() < 0.5 else scores.tolist()))
    return requests, answers


@pytest.mark.parametrize("max_candidates", [300, 12])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_union_equals_the_per_request_loop(seed, max_candidates):
    requests, answers = _random_batch(seed)
    batch = unions(requests, answers, max_candidates)
    for j, request in enumerate(requests):
        expected = loop_union(request, {name: answers[name][j] for name in answers}, max_candidates)
        got = batch[j]
        assert got.request is request
        assert got.items == expected.items
        assert got.top_scores == expected.top_scores
        for name in answers:
            np.testing.assert_array_equal(got.ranks[name], expected.ranks[name])
            np.testing.assert_array_equal(got.scores[name], expected.scores[name])
            assert got.ranks[name].dtype == np.int32 and got.scores[name].dtype == np.float64


def test_a_batch_without_exclusions_or_candidates():
    requests = [RecommendationRequest("u", 3), RecommendationRequest("v", 3)]
    answers = {"one": [RankedColumns([], []), RankedColumns(["a", "b"], [2.0, 1.0])],
               "two": [RankedColumns([], []), RankedColumns(["b", "b", "c"], [5.0, 4.0, 3.0])]}
    first, second = unions(requests, answers, 10)
    assert first.items == [] and first.ranks["one"].shape == (0,)
    assert second.items == ["a", "b", "c"]
    assert second.ranks["two"].tolist() == [-1, 0, 2] and second.scores["two"].tolist() == [0.0, 5.0, 3.0]
    assert unions([], {"one": []}, 10) == []
    nothing = unions(requests, {"one": [RankedColumns([], []), RankedColumns([], [])]}, 10)  # no candidate at all
    assert [(s.items, s.ranks["one"].shape, s.top_scores) for s in nothing] == [([], (0,), {"one": 0.0})] * 2
