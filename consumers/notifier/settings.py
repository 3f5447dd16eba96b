"""Notifier settings, read from `STREAMREC_NOTIFIER_*` (Kafka and Redis come from `streamrec.settings`)."""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streamrec.settings import parse_origin_list

log = logging.getLogger(__name__)
DEV_TOKEN_SECRET = "streamrec-dev-token-secret"  # a local default, warned about at start


class NotifierSettings(BaseSettings):
    """Where the notifier listens, who may read which stream, and how often a user may be pushed to."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_NOTIFIER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)
    consumer_group: str = "streamrec-notifier"
    token_secret: SecretStr = Field(
        SecretStr(DEV_TOKEN_SECRET), description="HMAC key of the user stream tokens (shared with the app backend)"
    )
    token_ttl_s: int = Field(24 * 3600, ge=60, description="Lifetime of tokens minted by `streamrec push-token`")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:8080", "http://localhost:8080"],
        description="Browser origins allowed to open the stream (the collector's demo page by default)",
    )

    # --- fatigue rules (0 switches a rule off) ----------------------------------------------------
    max_per_hour: int = Field(4, ge=0, description="Pushes per user per rolling hour")
    max_per_day: int = Field(12, ge=0, description="Pushes per user per rolling day")
    min_interval_s: float = Field(60.0, ge=0, description="Quiet time between two pushes to one user")
    repeat_window_s: int = Field(7 * 24 * 3600, ge=0, description="An item is never pushed twice within this window")
    max_age_s: int = Field(3600, ge=0, description="Notifications older than this when consumed are stale")

    # --- offline delivery --------------------------------------------------------------------------
    pending_max: int = Field(20, ge=1, description="Notifications kept per user for reconnecting clients")
    pending_ttl_s: int = Field(6 * 3600, ge=1, description="Undelivered notifications expire after this")
    sweep_interval_s: float = Field(30.0, gt=0, description="How often expired pending notifications are counted")
    heartbeat_s: float = Field(15.0, gt=0, description="SSE keep-alive comment interval")
    dedupe_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="Notification ids remembered to drop redeliveries")

    # --- webhook -----------------------------------------------------------------------------------
    webhook_url: str | None = Field(None, description="POST every pushed notification here too")
    webhook_secret: SecretStr | None = Field(None, description="HMAC key of the X-Streamrec-Signature header")
    webhook_max_attempts: int = Field(5, ge=1)
    webhook_backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each attempt")
    webhook_backoff_max_s: float = Field(10.0, ge=0)
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_concurrency: int = Field(8, ge=1, description="Webhook posts in flight per consumed batch")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return parse_origin_list(value)

    def warn_if_insecure(self) -> None:
        if self.token_secret.get_secret_value() == DEV_TOKEN_SECRET:
            log.warning("STREAMREC_NOTIFIER_TOKEN_SECRET is the development default: set it in production")
        if self.webhook_url and self.webhook_secret is None:
            log.warning("webhook configured without STREAMREC_NOTIFIER_WEBHOOK_SECRET: requests are unsigned")
