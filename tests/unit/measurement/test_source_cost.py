"""`bench sources`: every named source gets one row of positive timings, single calls are timed once per request,
and sources that cannot be built here are listed as skipped with the reason instead of stopping the run."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from measurement.benchmarks.source_cost import benchmark_sources
from model import registry
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from model.registry import ModelContext, ModelSpec, ModelUnavailable
from streamrec.events import Event, PageView

N_REQUESTS = 10


class CountingSource(Recommender):
    """Answers after `delay_s`, counting single and batched calls apart (its batch never calls `recommend`)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.single_calls = 0
        self.batches: list[int] = []
        self.fitted_rows = 0
        self.asked: list[RecommendationRequest] = []

    def fit(self, interactions) -> CountingSource:
        self.fitted_rows = len(interactions)
        return self

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        self.single_calls += 1
        self.asked.append(request)
        time.sleep(self.delay_s)
        return [ScoredItem("p1", 1.0)]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        self.batches.append(len(requests))
        time.sleep(self.delay_s)
        return [[ScoredItem("p1", 1.0)] for _ in requests]


def _events() -> list[Event]:
    """Four users, 50 product views a minute apart, handed over out of time order."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = [PageView(event_id=f"e{i}", user_id=f"u{i % 4}", session_id=f"s{i % 4}", item_id=f"p{i % 7}",
                       ts=start + timedelta(minutes=i)) for i in range(50)]
    return events[::-1]


def _unavailable(context: ModelContext) -> Recommender:
    raise ModelUnavailable("its bundle is not there")


@pytest.fixture
def sources(monkeypatch) -> dict[str, CountingSource]:
    """Registers a fast and a slow counting source, one that cannot be built, and one that needs Redis."""
    built = {"fast": CountingSource(0.0), "slow": CountingSource(0.003)}
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    for name, model in built.items():
        registry.register_model(ModelSpec(name, "counting fake", lambda context, m=model: m.fit(context.train)))
    registry.register_model(ModelSpec("missing", "cannot be built", _unavailable))
    registry.register_model(ModelSpec("streaming", "needs Redis", lambda context: CountingSource(0.0),
                                      learns_from_stream=True, needs_redis=True))
    return built


def test_one_row_per_built_source_with_positive_figures_and_the_rest_skipped(sources):
    result = benchmark_sources(["fast", "missing", "slow", "streaming"], _events(), n_requests=N_REQUESTS,
                               batch_sizes=(1, 4), progress=False)
    assert list(result.rows) == ["fast", "slow"]
    for row in result.rows.values():
        assert set(row) == {"recommend p50", "recommend p99", "batch of 1", "batch of 4", "fit/warm"}
        assert all(value > 0 and math.isfinite(value) for value in row.values())
        assert row["recommend p99"] >= row["recommend p50"]
    assert result.info["skipped"]["missing"] == "its bundle is not there"
    assert "Redis" in result.info["skipped"]["streaming"]
    assert result.info["fit/warm events"] == 40  # the first 80% in time order


def test_single_calls_are_timed_once_per_request_and_batches_cover_every_request(sources):
    benchmark_sources(["fast"], _events(), n_requests=N_REQUESTS, batch_sizes=(1, 4), progress=False)
    fast = sources["fast"]
    assert fast.single_calls == N_REQUESTS + 1  # one warm-up call, then each request once
    assert fast.batches == [1, *[1] * N_REQUESTS, 4, 4, 4, 2]  # warm-up of each size, then chunks of the requests
    assert fast.fitted_rows == 40


def test_figures_are_milliseconds_per_trigger(sources):
    result = benchmark_sources(["slow"], _events(), n_requests=N_REQUESTS, batch_sizes=(1, 5), progress=False)
    row = result.rows["slow"]
    assert row["recommend p50"] >= 3.0 and row["batch of 1"] >= 3.0  # one 3 ms sleep per call
    assert 3.0 / 5 <= row["batch of 5"] < 3.0  # one sleep per chunk of 5, shared by its five triggers
    assert len(result.samples["slow"]) == N_REQUESTS


def test_requests_are_the_contexts_of_the_latest_events_never_fitted_on(sources):
    benchmark_sources(["fast"], _events(), n_requests=N_REQUESTS, batch_sizes=(1,), progress=False)
    asked = sources["fast"].asked[1:]  # after the warm-up call
    assert [r.trigger_item for r in asked] == [f"p{i % 7}" for i in range(40, 50)]
    assert all(r.context is not None and r.context.events > 0 for r in asked)
