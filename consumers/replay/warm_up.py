"""Warm-up: observe past events through the worker's pipeline with triggers off.

Replay and the offline protocols both need a streaming model (and the session store) to have seen the
training events before anything is judged; this is the one way they do it, so both warm up alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sized
from itertools import islice

from tqdm import tqdm

from consumers.worker.recommendation_pipeline import RecommendationPipeline
from model.recommender import RecommenderSource
from streamrec.events import Event
from streamrec.session_store import SessionStore
from streamrec.settings import Settings

WARMUP_BATCH = 500


def without_triggers(settings: Settings) -> Settings:
    """Settings under which no event triggers (warm-up: build session state and model state only)."""
    return settings.model_copy(
        update={
            "trigger_on_task_completed": False,
            "trigger_on_add_to_cart": False,
            "trigger_on_purchase": False,
            "trigger_every_nth_page_view": 0,
        }
    )


def warm_up(
    store: SessionStore,
    source: RecommenderSource,
    events: Iterable[Event],
    batch_size: int = WARMUP_BATCH,
    progress: bool = False,
    desc: str = "warm-up",
    total: int | None = None,
) -> None:
    """Apply `events` to `store` and let the model observe them, in batches, under the store's settings minus
    every trigger (nothing is recommended or sent). `events` may be a stream; `total` sizes its progress bar."""
    warm = RecommendationPipeline(store, source, without_triggers(store.settings))
    if total is None and isinstance(events, Sized):
        total = len(events)
    batches = math.ceil(total / batch_size) if total is not None else None
    with tqdm(total=batches, desc=desc, unit="batch", disable=not progress or total == 0) as bar:
        for batch in _batches(events, batch_size):
            warm.prepare(batch)
            bar.update()


def _batches(events: Iterable[Event], size: int) -> Iterator[list[Event]]:
    """Consecutive batches of `size` (the last one shorter), read lazily."""
    it = iter(events)
    while batch := list(islice(it, size)):
        yield batch
