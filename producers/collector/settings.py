"""Collector settings, read from `STREAMREC_COLLECTOR_*` (Kafka itself comes from `streamrec.settings`)."""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streamrec.settings import parse_origin_list

DEV_API_KEYS = {"demo": "demo-key"}


class CollectorSettings(BaseSettings):
    """What the collector accepts, from whom, and how long it waits for the broker."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_COLLECTOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=lambda: {app: SecretStr(key) for app, key in DEV_API_KEYS.items()},
        description="Application name -> API key; env as JSON or `app1=key1,app2=key2`",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to POST from a browser (comma-separated or JSON)"
    )
    max_batch_events: int = Field(500, ge=1, description="Most events in one POST")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413")
    produce_timeout_s: float = Field(10.0, gt=0, description="Wait this long for Kafka's acknowledgement, then 503")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with a 503 while the broker is unavailable")
    demo_enabled: bool = Field(True, description="Serve the demo shop page at /demo")
    demo_application: str = Field("demo", description="The application whose key the demo page uses")
    notifier_public_url: str = Field(
        "http://127.0.0.1:8081", description="Where browsers reach the notifier (the demo page subscribes there)"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("api_keys must be JSON or `app=key,app2=key2`")
            return {app.strip(): key.strip() for app, key in pairs}
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_not_empty(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for app, key in value.items():
            if not app or not key.get_secret_value():
                raise ValueError("every application needs a name and a non-empty key")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return parse_origin_list(value)

    def application_for_key(self, presented: str) -> str | None:
        """The application a presented key belongs to (constant-time compare against every key), or None."""
        found = None
        for app, key in self.api_keys.items():
            if hmac.compare_digest(presented.encode(), key.get_secret_value().encode()):
                found = app
        return found
