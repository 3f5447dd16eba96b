"""Topic names and their explicit creation (never rely on broker auto-creation).

`ensure_topics` also checks topics that already exist: a topic auto-created by a broker (after a restart,
or by a client's metadata request) has the broker's default partition count, not ours, and a wrong count
silently changes how users are spread over workers. Such a mismatch is logged as an ERROR and returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streamrec.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class PartitionMismatch:
    """An existing topic whose partition count is not the configured one."""

    topic: str
    found: int
    expected: int

    def describe(self) -> str:
        if self.found < self.expected:
            fix = (
                f"add partitions with `kafka-topics.sh --bootstrap-server HOST:PORT --alter --topic {self.topic} "
                f"--partitions {self.expected}` (existing users move to other partitions: keys re-hash)"
            )
        else:
            fix = (
                "Kafka cannot remove partitions in place: set the configured count to "
                f"{self.found}, or delete and recreate the topic (its records are lost)"
            )
        return f"topic {self.topic} has {self.found} partitions, expected {self.expected}: {fix}"


@dataclass
class TopicReport:
    """What `ensure_topics` did: topics created, and existing topics with the wrong partition count."""

    created: list[str] = field(default_factory=list)
    mismatches: list[PartitionMismatch] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # existing topics the broker would not describe

    @property
    def ok(self) -> bool:
        return not self.mismatches


# Past events staged for replay or training keep their event time as record time (months or years ago): a broker's
# time retention (7 days by default) would delete them at its next check, mid-read. These topics keep everything.
KEEP_EVERYTHING = {"retention.ms": "-1"}


def historical_topic(settings: Settings, name: str) -> TopicSpec:
    """An events-shaped topic for past events (replay staging, real sessions as a stream): no time retention."""
    return TopicSpec(name, settings.events_partitions, settings.replication_factor, dict(KEEP_EVERYTHING))


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics a deployment needs, with their configured partition counts."""
    rf = settings.replication_factor
    return [
        TopicSpec(settings.events_topic, settings.events_partitions, rf, {}),
        TopicSpec(settings.notifications_topic, settings.notifications_partitions, rf, {}),
        # Dead letters keep the original bytes: allow records a little above the events limit.
        TopicSpec(
            settings.dlq_topic,
            settings.dlq_partitions,
            rf,
            {"max.message.bytes": str(max(1_048_588, settings.dlq_max_original_bytes * 2 + 65_536))},
        ),
    ]


def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> TopicReport:
    """Create missing topics and check the partition count of existing ones (mismatches are logged as ERROR)."""
    specs = specs if specs is not None else topic_specs(settings)
    report = TopicReport()
    admin = KafkaAdminClient(client_id="streamrec-admin", **settings.kafka_client_options())
    try:
        existing = set(admin.list_topics())
        for spec in (s for s in specs if s.name not in existing):
            try:
                # wait_for_metadata: Kafka answers CreateTopics before its metadata lists the topic; a consumer
                # subscribing in that gap joins with no partitions and idles until a later metadata refresh.
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.config)],
                    wait_for_metadata=True,
                )
                report.created.append(spec.name)
                log.info("created topic %s with %d partitions", spec.name, spec.partitions)
            except TopicAlreadyExistsError:
                existing.add(spec.name)  # created meanwhile by someone else: check it like the others
        present = [s for s in specs if s.name in existing]
        if present:
            _check_partitions(admin, present, report)
    finally:
        admin.close()
    for mismatch in report.mismatches:
        log.error("%s", mismatch.describe())
    return report


def _check_partitions(admin: KafkaAdminClient, specs: list[TopicSpec], report: TopicReport) -> None:
    try:
        described = admin.describe_topics([s.name for s in specs])
    except KafkaError as error:
        report.unverified.extend(s.name for s in specs)
        log.warning("could not describe topics to check partition counts: %r", error)
        return
    # kafka-python 3.0.12: a list of metadata dicts {"name", "error_code", "partitions": [...]} per topic.
    found = {t["name"]: len(t["partitions"]) for t in described if t.get("error_code") == 0 and t["partitions"]}
    for spec in specs:
        if spec.name not in found:
            report.unverified.append(spec.name)
            log.warning("broker did not describe topic %s: its partition count is unchecked", spec.name)
        elif found[spec.name] != spec.partitions:
            report.mismatches.append(PartitionMismatch(spec.name, found[spec.name], spec.partitions))
