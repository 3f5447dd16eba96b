"""The trainer retrains the hybrid from the events topic on a sliding window and publishes versions the worker
can load, keeping only the newest few."""

from __future__ import annotations

import threading

import pytest

from consumers.training.trainer import run_trainer
from model.bundle_paths import list_bundles
from model.saved_models import load_recommender
from model.serving import streaming_sources
from producers.simulator import simulate
from tests.pipeline_helpers import send

pytestmark = pytest.mark.integration


def test_two_rounds_publish_two_versions_and_keep_the_newest(settings):
    _, events = simulate(2400, seed=31)
    send(settings, events)
    newest_ts = max(e.ts for e in events)
    rounds = run_trainer(settings, settings.events_topic, window_s=10 * 365 * 86400, every_s=0,
                         model_dir=settings.model_dir, stop=threading.Event(), rounds=2, min_events=100,
                         log_events=600, neural=False, keep=1)
    assert [r.events for r in rounds] == [len(events), len(events)]  # the whole topic is inside the window
    assert all(r.published for r in rounds) and rounds[0].published != rounds[1].published
    assert [p.name for p in list_bundles(settings.model_dir)] == [rounds[1].published]  # keep=1
    served = load_recommender(settings.model_dir / rounds[1].published,
                              streaming=streaming_sources(settings, settings.redis_client()))
    assert served.name == "hybrid" and served.stats.now_ms == int(newest_ts.timestamp() * 1000)


def test_a_window_with_too_few_events_skips_the_round_and_publishes_nothing(settings):
    _, events = simulate(300, seed=32)
    send(settings, events)
    (only,) = run_trainer(settings, settings.events_topic, window_s=10 * 365 * 86400, every_s=0,
                          model_dir=settings.model_dir, stop=threading.Event(), rounds=1, min_events=10_000)
    assert only.published is None and "fewer than 10000" in only.skipped
    assert list_bundles(settings.model_dir) == []
