"""Which recommender the worker serves: the newest saved model of any kind when one exists, else the streaming
baseline (which also answers what the saved model cannot: tools, and the two-tower's cold starts).

The worker asks `source.current()` once per batch, so a model swapped in between two batches never
splits a batch: offsets, Redis writes and notifications of every batch come from one model, and
nothing is lost or processed twice by a reload. New saved models are looked for every
`settings.model_reload_interval_s`; a model that fails to load is logged and skipped, the old model stays.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender
from model.baselines.tool_transitions import ToolTransitionRecommender
from model.bundle_paths import newest_bundle
from model.exploration import exploring
from model.recommender import Recommender, RecommenderSource, ToolsFrom, WithFallback
from model.saved_models import load_recommender
from streamrec.settings import Settings

log = logging.getLogger(__name__)


class BundleRecommenderSource:
    """Serves the newest complete saved model under `model_dir`, checking for a newer one at most every interval."""

    def __init__(
        self,
        model_dir: Path,
        fallback: Recommender,
        reload_interval_s: float,
        loader: Callable[[Path, Recommender], Recommender] = load_recommender,
        clock: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        self.model_dir = model_dir
        self.fallback = fallback
        self.reload_interval_s = reload_interval_s
        self.loader = loader
        self.clock = clock
        self.loaded_path: Path | None = None
        self.reloads = 0
        self._recommender: Recommender = fallback
        self._rejected: set[Path] = set()
        self._next_check = 0.0
        self._settled: Recommender | None = None  # the model the heap was last settled for (`settle_heap`)
        # In the background, a new version loads on its own thread while the old one keeps serving; `current()`
        # hands out the new one from the first batch after it is ready (one reference swap: a batch never
        # straddles two models, and no batch waits for a load). The first model loads before the first batch.
        self.background = background
        self._loading: threading.Thread | None = None
        self.check_now()

    @property
    def served(self) -> Recommender:
        """The model serving now, read without checking for a newer one (metrics read it from another thread)."""
        return self._recommender

    def current(self) -> Recommender:
        if self.clock() >= self._next_check and (self._loading is None or not self._loading.is_alive()):
            self._next_check = self.clock() + self.reload_interval_s
            if self.background:
                self._loading = threading.Thread(target=self.check_now, name="model-reload", daemon=True)
                self._loading.start()
            else:
                self.check_now()
        if self._settled is not self._recommender and self.loaded_path is not None:
            # Between two batches, so no batch holds the model it replaced: that one is collected now.
            self._settled = self._recommender  # first: the old model must not be held here while collecting
            log.info("heap settled after the model change in %.0f ms", 1000 * settle_heap())
        return self._recommender

    def check_now(self) -> bool:
        """Load the newest saved model if it is newer than the one served; True when the model changed."""

        self._next_check = self.clock() + self.reload_interval_s
        newest = newest_bundle(self.model_dir)
        if newest is None or newest == self.loaded_path or newest in self._rejected:
            return False
        started = time.monotonic()
        try:
            recommender = self.loader(newest, self.fallback)
        except Exception:  # noqa: BLE001 - a broken model must not stop the stream
            log.exception("cannot load saved model %s; keeping %s", newest, self._recommender.name)
            self._rejected.add(newest)
            return False
        self._recommender, self.loaded_path = recommender, newest
        self.reloads += 1
        log.info("serving %s version %s (loaded in %.2fs)", recommender.name, recommender.version,
                 time.monotonic() - started)
        return True


def settle_heap() -> float:
    """Collect once, then freeze what survives (`gc.freeze`) so later collections skip it; returns the seconds.

    A loaded hybrid is some 400,000 Python objects (statistics, neighbour lists, vocabularies): a full collection
    over them took 250 ms, and the collector runs one every so often on its own, which was the worker's p99 at
    100 events/s (394 ms beside a 9 ms p50 floor). Frozen, a collection skips them (0.003 ms). Run once per model
    change, after the old model's last batch, so the old model is collected rather than frozen.
    """
    started = time.monotonic()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.monotonic() - started


def served_model_name(settings: Settings) -> str:
    """What `streamrec worker` serves under `settings` right now: the newest saved model's kind, else the
    streaming model (replay reports mark it, so a table says which row users are sent)."""
    from model.bundle_paths import read_manifest

    newest = newest_bundle(settings.model_dir)
    return read_manifest(newest).kind if newest is not None else settings.streaming_model


def streaming_sources(settings: Settings, client: redis.Redis) -> dict[str, Recommender]:
    """The models that learn from the stream under `settings.key_prefix`, by name (one object each per worker)."""
    return {"session-knn-stream": StreamingSessionKNNRecommender(client, settings.key_prefix),
            "session-cooccurrence": SessionCooccurrenceRecommender(client, settings.key_prefix),
            "tool-transitions": ToolTransitionRecommender(client, settings.key_prefix)}


def streaming_model(settings: Settings, client: redis.Redis,
                    sources: dict[str, Recommender] | None = None) -> Recommender:
    """The model served with no saved model (`settings.streaming_model`), and the fallback of a saved one.
    Session-kNN knows product sessions only: a start with nothing indexed yet goes to co-occurrence. Tool triggers
    go to the tool transitions (what users used next after the tool just finished: HR@5 0.606 against
    co-occurrence's 0.527 on the next tool in a simulated replay through Kafka, chosen on an earlier validation
    window), topped up by co-occurrence."""
    sources = sources or streaming_sources(settings, client)
    answers = ToolsFrom(sources["tool-transitions"], sources["session-cooccurrence"])
    if settings.streaming_model == "session-knn-stream":
        return WithFallback(sources["session-knn-stream"], answers)
    return answers


def make_recommender_source(settings: Settings, client: redis.Redis) -> RecommenderSource:
    """The recommender source for a worker or a replay running under `settings.key_prefix`: the newest saved
    model (a hybrid shares the worker's streaming sources), else the streaming model."""
    sources = streaming_sources(settings, client)
    streaming = streaming_model(settings, client, sources)

    def load(path: Path, _served_fallback: Recommender) -> Recommender:
        # The saved model falls back to the streaming model itself; the exploration budget wraps the whole.
        return exploring(load_recommender(path, streaming, streaming=sources), client, settings)

    return BundleRecommenderSource(settings.model_dir, exploring(streaming, client, settings),
                                   settings.model_reload_interval_s, loader=load, background=True)
