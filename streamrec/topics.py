"""Topic names and their explicit creation (never rely on broker auto-creation)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streamrec.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


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


def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left as they are."""
    specs = specs if specs is not None else topic_specs(settings)
    admin = KafkaAdminClient(client_id="streamrec-admin", **settings.kafka_client_options())
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in missing:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=spec.config)]
                )
                created.append(spec.name)
                log.info("created topic %s with %d partitions", spec.name, spec.partitions)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
