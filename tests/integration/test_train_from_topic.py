"""`streamrec train --from-topic` trains on a time window of the events topic and saves where the worker serves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from cli import app
from model.bundle_paths import newest_bundle, read_manifest
from model.saved_models import load_recommender
from producers.simulator import simulate
from streamrec.settings import get_settings
from tests.pipeline_helpers import send

pytestmark = pytest.mark.integration


def test_train_reads_the_window_of_the_topic_and_publishes_the_model(settings, tmp_path, monkeypatch):
    _, events = simulate(3000, seed=21)
    send(settings, events)
    cut = events[len(events) // 2].ts
    monkeypatch.setenv("STREAMREC_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, [
            "train", "--from-topic", settings.events_topic, "--since", cut.isoformat(),
            "--until", (events[-1].ts + timedelta(seconds=1)).isoformat(), "--model", "popularity",
            "--out", str(tmp_path),
        ])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    in_window = [e for e in events if e.ts >= cut]
    assert f"{len(in_window):,} interactions from topic {settings.events_topic}" in result.output
    saved = newest_bundle(tmp_path)
    assert saved is not None and read_manifest(saved).kind == "popularity"
    counted = {item for item, _ in load_recommender(saved).ranked["product"]}
    window_items = {getattr(e, "item_id", None) for e in in_window} - {None}
    only_before = {getattr(e, "item_id", None) for e in events if e.ts < cut} - window_items - {None}
    assert only_before, "the test needs items seen only before --since"
    assert counted == window_items  # trained on the window's items, none of those seen only before it


def test_train_wants_exactly_one_source(tmp_path):
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "exactly one of --data or --from-topic" in result.output
