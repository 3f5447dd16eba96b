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
