"""The `Notification` published to the notifications topic, and what the notifier pushes to users."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streamrec.events import utc_now

OfferKind = Literal["product", "tool", "category", "brand", "price_band"]


class RecommendedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    score: float
    kind: OfferKind = "product"


class Notification(BaseModel):
    """A ranked recommendation for one user, caused by one triggering event."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    notification_id: str
    user_id: str
    session_id: str
    items: list[RecommendedItem] = Field(min_length=1)
    model_name: str
    model_version: str
    reason: str
    trigger_event_id: str
    trigger_event_type: str
    trigger_ts: datetime
    created_at: datetime = Field(default_factory=utc_now)

    @property
    def latency_ms(self) -> float:
        return (self.created_at - self.trigger_ts).total_seconds() * 1000.0


def notification_id_for(trigger_event_id: str) -> str:
    """Deterministic id: a redelivered trigger yields the same id, so downstream can drop repeats."""
    return hashlib.sha256(f"notification:{trigger_event_id}".encode()).hexdigest()[:32]


def encode_notification(notification: Notification) -> bytes:
    return notification.model_dump_json().encode()


def decode_notification(raw: bytes) -> Notification:
    return Notification.model_validate_json(raw)
