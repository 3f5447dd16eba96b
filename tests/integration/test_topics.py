"""Partition counts of existing topics are checked: a topic auto-created with the broker's default is loud."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from cli import app
from streamrec.topics import PartitionMismatch, TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def test_an_existing_topic_with_another_partition_count_is_reported_and_logged(settings, caplog):
    topic = settings.events_topic
    first = ensure_topics(settings, [TopicSpec(topic, 4, 1, {})])  # as a broker's auto-creation would
    assert first.created == [topic] and first.ok

    with caplog.at_level(logging.ERROR, logger="streamrec.topics"):
        report = ensure_topics(settings, [TopicSpec(topic, 6, 1, {})])
    assert report.created == []
    assert report.mismatches == [PartitionMismatch(topic, found=4, expected=6)]
    assert any(topic in r.getMessage() and "4 partitions, expected 6" in r.getMessage() for r in caplog.records)

    again = ensure_topics(settings, [TopicSpec(topic, 4, 1, {})])
    assert again.ok and again.created == [] and again.unverified == []


def test_streamrec_topics_exits_non_zero_naming_topic_counts_and_fix(settings, monkeypatch):
    ensure_topics(settings, [TopicSpec(settings.events_topic, 4, 1, {})])
    for name, value in settings.model_copy(update={"events_partitions": 6}).to_env().items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["topics"])
    assert result.exit_code == 1, result.output
    assert f"topic {settings.events_topic} has 4 partitions, expected 6" in result.output
    assert "--alter" in result.output
    # The other topics did not exist: they were created with the configured counts.
    assert settings.notifications_topic in result.output


def test_fewer_partitions_wanted_than_exist_says_it_cannot_be_fixed_in_place():
    message = PartitionMismatch("events", found=6, expected=4).describe()
    assert "cannot remove partitions" in message and "6" in message and "4" in message


def test_staged_past_events_survive_the_brokers_time_retention(settings):
    """Staged events keep their event time as record time: a replay topic of 2019 events must not be deleted by
    the 7-day retention at the broker's next check (it was, mid-replay, on Apache Kafka)."""
    from datetime import UTC, datetime

    from consumers.replay.sources import read_topic_events
    from consumers.replay.through_kafka import stage_events
    from streamrec.events import PageView

    topic = f"{settings.events_topic}.staged"
    old = [PageView(user_id=f"u{i}", session_id="s", item_id="i", ts=datetime(2019, 10, 1, 0, i, tzinfo=UTC))
           for i in range(20)]
    stage_events(old, settings, topic, progress=False)
    admin = _admin(settings)
    try:
        from kafka.admin import ConfigResource, ConfigResourceType

        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs = dict(described["topic"][topic])  # kafka-python 3: the topic's non-default configs
    finally:
        admin.close()
    if "retention.ms" not in configs:
        pytest.skip("this broker does not describe topic configs")
    retention = configs["retention.ms"]
    assert (retention["value"] if isinstance(retention, dict) else retention) == "-1"
    assert len(read_topic_events(settings, topic, progress=False)) == 20


def _admin(settings):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(client_id="test-admin", **settings.kafka_client_options())
