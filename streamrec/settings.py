"""Settings for every streamrec process, read from `STREAMREC_*` environment variables.

Defaults work against the local dev stack (`streamrec dev up`); point at a real cluster with
`STREAMREC_KAFKA_BOOTSTRAP` and `STREAMREC_REDIS_URL`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamrec.redis_connection import RedisClient, redis_client


class Settings(BaseSettings):
    """One flat, validated view of the configuration (env prefix `STREAMREC_`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_", extra="ignore")

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Comma-separated bootstrap servers")
    kafka_bootstrap_timeout_ms: int = Field(10_000, description="Give up connecting to the brokers after this")
    kafka_reconnect_backoff_max_ms: int = Field(2000, ge=50, description="Longest wait between reconnect attempts")
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    events_topic: str = "events"
    notifications_topic: str = "notifications"
    dlq_topic: str = "events.dlq"
    events_partitions: int = Field(6, ge=1)
    notifications_partitions: int = Field(3, ge=1)
    dlq_partitions: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)
    consumer_group: str = "streamrec-worker"
    # Kafka's group.min.session.timeout.ms (6 s by default) is the floor; a SIGKILLed worker's partitions move
    # after this (6.0 s measured with `streamrec bench-group`), a SIGTERMed one's at once (docs/operations.md).
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    # Low fetch wait keeps end-to-end latency near the broker's floor (default 500 ms adds ~130 ms).
    fetch_max_wait_ms: int = 20
    max_poll_records: int = 500
    producer_linger_ms: int = 2
    # at-least-once: produce, flush, record in Redis, commit (a crash can publish a notification twice, same id).
    # exactly-once: notifications, dead letters and the consumed offsets commit in one Kafka transaction per
    # batch, and readers use read_committed (needs a broker with transactions: Apache Kafka).
    delivery: Literal["at-least-once", "exactly-once"] = "at-least-once"
    # at-least-once only. async: each batch's offsets are sent without waiting for the coordinator's answer
    # (6.9 ms median on Kafka 4.1 here, half the loop at 100 events/s), committed synchronously on revocation
    # and close (consumers/worker/offset_commits.py). sync: the loop waits for every commit.
    commit_mode: Literal["async", "sync"] = "async"
    transactional_id: str | None = Field(
        None, description="Stable per worker (a pod name) to fence a dead one at once; default: group-host-pid"
    )
    transaction_timeout_ms: int = Field(
        10_000, ge=1000, description="An open transaction of a dead worker blocks read_committed readers this long"
    )
    max_event_bytes: int = Field(256 * 1024, description="Events larger than this go to the dead-letter topic")
    dlq_max_original_bytes: int = Field(
        256 * 1024, description="Original payload kept in a dead-letter record; larger ones are truncated"
    )

    # --- Event-time policy (every entry: collector, SDK, worker) --------------------------------
    # Client clocks are not trusted: an event time beyond this skew ahead of receipt is refused (422 at the
    # collector, ValueError in the SDK, dead letter at the worker) instead of wiping cooldowns or TTLs.
    event_max_future_skew_s: float = Field(300.0, ge=0, description="Refuse events this far ahead of receipt")
    event_min_ts_ms: int = Field(
        946_684_800_000, ge=0, description="Refuse events before this (ms since epoch; default 2000-01-01 UTC)"
    )

    # --- Outages: wait them out, never exit ------------------------------------------------------
    outage_backoff_s: float = Field(0.2, gt=0, description="First wait before retrying Redis or the broker")
    outage_backoff_max_s: float = Field(5.0, gt=0, description="Longest wait between retries during an outage")
    # A Redis that comes back empty (no persistence, or a new server) is rebuilt from the log by the first
    # worker that notices, before any worker writes to it again (docs/operations.md).
    auto_restore: bool = Field(True, description="Rebuild an empty Redis from the topics before resuming")
    auto_restore_window_s: int = Field(
        1800, ge=0, description="How far back the automatic rebuild reads the events and notifications topics"
    )

    # --- Redis -------------------------------------------------------------------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_socket_timeout_s: float = Field(5.0, gt=0, description="A Redis reply slower than this is an outage")
    redis_connect_timeout_s: float = Field(2.0, gt=0, description="Give up one Redis connection attempt after this")
    key_prefix: str = Field("streamrec:", description="Prefix of every Redis key; replays use their own")
    session_ttl_s: int = Field(30 * 60, description="A session expires after this much idle time")
    user_history_ttl_s: int = Field(90 * 24 * 3600, description="Items used/bought and notified are kept this long")
    recent_items_cap: int = Field(50, ge=1, description="Recent items kept per session and per user")
    context_items: int = Field(20, ge=1, description="Recent items per list handed to recommenders per event")
    processed_event_ttl_s: int = Field(7 * 24 * 3600, description="Idempotency markers for event ids")

    # --- Triggers and filtering --------------------------------------------------------------
    trigger_on_task_completed: bool = True
    trigger_on_add_to_cart: bool = True
    trigger_on_purchase: bool = True
    trigger_every_nth_page_view: int = Field(5, ge=0, description="0 disables page-view triggers")
    notify_cooldown_s: int = Field(
        24 * 3600, description="An item notified to a user is not notified again within this window"
    )
    recommendations_per_notification: int = Field(5, ge=1, le=100)
    processing_retries: int = Field(2, ge=0)

    # --- Models --------------------------------------------------------------------------------
    model_dir: Path = Path("artifacts/models")
    data_dir: Path = Field(
        Path(__file__).resolve().parents[1].parent / "shared" / "data",
        description="Where the offline datasets live (asos-dsf2020/, diginetica-srgnn/, ...): repo's ../shared/data",
    )
    model_reload_interval_s: float = 10.0
    streaming_model: Literal["session-cooccurrence", "session-knn-stream"] = Field(
        "session-knn-stream",
        description="The model that learns from the stream in Redis (shared by all workers): served when no saved "
                    "model is, and the fallback for what a saved model cannot answer (tools, cold starts)",
    )

    exploration_share: float = Field(
        0.2, ge=0.0, le=0.5,
        description="Share of each product list's slots (every 1/share-th position, never the first) given to items "
                    "first seen within exploration_young_hours, chosen by Thompson sampling on their clicks; 0: off. "
                    "0.2 (the 5th of 5 notified items) chosen on a validation replay: overall HR@20 0.4680 -> 0.4689, "
                    "new items' 0.162 -> 0.247, minutes to a new item's first notification (p50) 352 -> 48",
    )
    exploration_young_hours: float = Field(24.0, gt=0, description="How long after its first event an item is young")

    stage_report: Path | None = Field(
        None, description="Where a worker writes, when it stops, the seconds its batches spent in each stage (JSON)",
    )
    worker_http_port: int | None = Field(
        None, ge=0, le=65535,
        description="Where a worker serves /metrics, /healthz and /readyz (0: any free port; unset: not served)",
    )
    compute_threads: int = Field(
        1, ge=1, le=256,
        description="Threads a worker's maths may use (BLAS, OpenMP, TensorFlow's intra-op pool; inter-op is 1): "
                    "a worker scores one small batch at a time beside the broker and Redis, where hand-offs between "
                    "threads cost more than they save (the ranker on 27k candidates: 18 ms with 2, 15 ms with 1)",
    )

    # --- Local dev stack ---------------------------------------------------------------------
    dev_dir: Path = Path(".streamrec/dev")
    log_level: str = "INFO"

    @field_validator("key_prefix")
    @classmethod
    def _prefix_ends_with_colon(cls, value: str) -> str:
        return value if value.endswith(":") else value + ":"

    @field_validator("kafka_bootstrap")
    @classmethod
    def _strip_bootstrap(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("kafka_bootstrap needs at least one host:port")
        return ",".join(servers)

    def to_env(self) -> dict[str, str]:
        """These settings as `STREAMREC_*` variables, to start a subprocess with exactly this configuration."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"STREAMREC_{name.upper()}"] = str(value)
        return env

    def redis_client(self) -> RedisClient:
        """A Redis client (one server or a cluster, by the URL) with this configuration's timeouts.

        Every streamrec process builds its client here.
        """
        return redis_client(
            self.redis_url,
            socket_timeout=self.redis_socket_timeout_s,
            socket_connect_timeout=self.redis_connect_timeout_s,
        )

    def kafka_client_options(self) -> dict[str, object]:
        """Connection options shared by every kafka-python client (secrets passed, never logged)."""
        options: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
            "bootstrap_timeout_ms": self.kafka_bootstrap_timeout_ms,
            # kafka-python backs reconnects off exponentially up to 30 s by default: a broker back after a
            # restart went unnoticed for up to that long. Retry at least every 2 s instead.
            "reconnect_backoff_max_ms": self.kafka_reconnect_backoff_max_ms,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return options


def parse_origin_list(value: object) -> object:
    """An env value for a list of origins: JSON (`["https://a"]`) or comma-separated; trailing slashes dropped."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [origin.strip().rstrip("/") for origin in text.split(",") if origin.strip()]
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings(...)` instead)."""
    return Settings()
