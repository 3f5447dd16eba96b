"""Which recommender the worker serves: the newest trained bundle when one exists, else the streaming baseline.

The worker asks `source.current()` once per batch, so a model swapped in between two batches never
splits a batch: offsets, Redis writes and notifications of every batch come from one model, and
nothing is lost or processed twice by a reload. New bundles are looked for every
`settings.model_reload_interval_s`; a bundle that fails to load is logged and skipped, the old model stays.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import redis

from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from model.bundle_paths import newest_bundle
from model.recommender import Recommender, RecommenderSource
from streamrec.settings import Settings

log = logging.getLogger(__name__)


def load_bundle_recommender(path: Path, fallback: Recommender) -> Recommender:
    """The two-tower + ranker of one bundle, answering cold starts and tools with `fallback`."""
    from model.bundle import ModelBundle  # TensorFlow loads only when there is a bundle to serve
    from model.two_tower.recommender import TwoTowerRecommender

    return TwoTowerRecommender(ModelBundle.load(path), fallback=fallback)


class BundleRecommenderSource:
    """Serves the newest complete bundle under `model_dir`, checking for a newer one at most every interval."""

    def __init__(
        self,
        model_dir: Path,
        fallback: Recommender,
        reload_interval_s: float,
        loader: Callable[[Path, Recommender], Recommender] = load_bundle_recommender,
        clock: Callable[[], float] = time.monotonic,
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
        self.check_now()

    def current(self) -> Recommender:
        if self.clock() >= self._next_check:
            self.check_now()
        return self._recommender

    def check_now(self) -> bool:
        """Load the newest bundle if it is newer than the one served; True when the model changed."""

        self._next_check = self.clock() + self.reload_interval_s
        newest = newest_bundle(self.model_dir)
        if newest is None or newest == self.loaded_path or newest in self._rejected:
            return False
        started = time.monotonic()
        try:
            recommender = self.loader(newest, self.fallback)
        except Exception:  # noqa: BLE001 - a broken bundle must not stop the stream
            log.exception("cannot load model bundle %s; keeping %s", newest, self._recommender.name)
            self._rejected.add(newest)
            return False
        self._recommender, self.loaded_path = recommender, newest
        self.reloads += 1
        log.info("serving %s version %s (loaded in %.2fs)", recommender.name, recommender.version,
                 time.monotonic() - started)
        return True


def make_recommender_source(settings: Settings, client: redis.Redis) -> RecommenderSource:
    """The recommender source for a worker or a replay running under `settings.key_prefix`."""
    baseline = SessionCooccurrenceRecommender(client, settings.key_prefix)
    return BundleRecommenderSource(settings.model_dir, baseline, settings.model_reload_interval_s)
