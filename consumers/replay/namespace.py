"""The isolated namespace of one replay: its own Redis key prefix and output topic, never the live ones."""

from __future__ import annotations

import re
import uuid

from streamrec.settings import Settings

REPLAY_PREFIX_ROOT = "replay:"


class NamespaceClash(ValueError):
    """A replay was about to write where live traffic lives."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", name).strip("-") or "model"


def replay_settings(live: Settings, run_id: str, model_name: str, **overrides: object) -> Settings:
    """The live settings with every write target moved under `replay:<run>:<model>:` (and the topic likewise).

    Trigger rules, filters and cooldowns stay as configured: the replay judges what production would do.
    """
    slug = _slug(model_name)
    isolated = live.model_copy(
        update={
            "key_prefix": f"{REPLAY_PREFIX_ROOT}{run_id}:{slug}:",
            "notifications_topic": f"replay.{run_id}.{slug}.notifications",
            "dlq_topic": f"replay.{run_id}.{slug}.dlq",
            "consumer_group": f"replay-{run_id}-{slug}",
            **overrides,
        }
    )
    check_isolated(live, isolated)
    return isolated


def check_isolated(live: Settings, replay: Settings) -> None:
    """Refuse a replay namespace that overlaps the live one (same key prefix or output topic)."""
    if replay.key_prefix.startswith(live.key_prefix) or live.key_prefix.startswith(replay.key_prefix):
        raise NamespaceClash(f"replay key prefix {replay.key_prefix!r} overlaps the live {live.key_prefix!r}")
    live_topics = {live.notifications_topic, live.events_topic, live.dlq_topic}
    if {replay.notifications_topic, replay.dlq_topic} & live_topics:
        raise NamespaceClash("a replay must not write to the live topics")
