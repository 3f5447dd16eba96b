"""Build the registry's models for an offline protocol: fit on the training frame, or warm streaming models up.

Streaming models (state in Redis) learn the training events by observing them through the same pipeline
the worker runs, with triggers off, under a throw-away key prefix that `close()` deletes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import redis

from consumers.replay.warm_up import warm_up
from model.recommender import Recommender, StaticRecommenderSource
from model.registry import ModelContext, ModelUnavailable, get_spec
from streamrec.events import Event, PageView, Purchase
from streamrec.session_store import SessionStore
from streamrec.settings import Settings

log = logging.getLogger(__name__)


def frame_events(train: pd.DataFrame) -> list[Event]:
    """Interactions-frame rows back as events (purchases stay purchases, everything else a page view)."""
    events: list[Event] = []
    for i, row in enumerate(train.sort_values("ts", kind="mergesort").itertuples(index=False)):
        cls = Purchase if row.event_type == "purchase" else PageView
        events.append(cls(event_id=f"train-{i}", user_id=str(row.user_id), session_id=str(row.session_id),
                          item_id=str(row.item_id), ts=row.ts))
    return events


@dataclass
class OfflineModels:
    """Fitted models by name, the ones skipped with the reason, and the Redis namespaces to clean up."""

    models: dict[str, Recommender] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    _stores: list[SessionStore] = field(default_factory=list)

    def close(self) -> None:
        for store in self._stores:
            store.delete_namespace()
        self._stores.clear()


def build_models(
    names: Sequence[str], train: pd.DataFrame, client: redis.Redis | None = None, truth_path: Path | None = None,
    settings: Settings | None = None,
) -> OfflineModels:
    """Fit (or warm up) every named model on `train`; unavailable ones are skipped with the reason."""
    import time

    settings = settings or Settings()
    built = OfflineModels()
    events: list[Event] | None = None
    for name in names:
        started = time.monotonic()
        try:
            spec = get_spec(name)
            prefix = f"eval:{uuid.uuid4().hex[:10]}:{name}:"
            if spec.needs_redis and client is None:
                client = settings.redis_client()
            context = ModelContext(train=train, redis=client, key_prefix=prefix, truth_path=truth_path,
                                   model_dir=settings.model_dir)
            model = spec.build(context)
            if spec.learns_from_stream:
                events = events if events is not None else frame_events(train)
                store = SessionStore(client, settings.model_copy(update={"key_prefix": prefix}))
                built._stores.append(store)
                warm_up(store, StaticRecommenderSource(model), events)
            built.models[name] = model
            built.seconds[name] = round(time.monotonic() - started, 2)
        except ModelUnavailable as error:
            log.warning("skipping %s: %s", name, error)
            built.skipped[name] = str(error)
    return built
