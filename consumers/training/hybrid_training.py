"""Train the hybrid from the live path: replay the end of the training window through the worker's pipeline, log
every trigger's candidates and features, label them with what the session did next, fit the listwise ranker.

Time order throughout: the sources are fitted (offline ones) or warmed up (streaming ones) on the events before the
logged stretch, the stretch is replayed with a trigger on every page view in a scratch namespace (deleted after),
and the ranker's validation split is the newest share of the logged triggers. The served hybrid then gets sources
fitted on the whole training frame; its streaming sources and item statistics learn the stream by observing it
(replay's warm-up, or the worker's own events).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd
import redis
from tqdm import tqdm

from consumers.replay.batching import leak_free_batches
from consumers.replay.warm_up import warm_up
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from model.hybrid.example_log import ExampleLog, Examples, labelled
from model.hybrid.item_stats import ItemStats
from model.hybrid.ranker import RankerConfig, TrainingReport, train_ranker
from model.hybrid.recommender import HybridRecommender
from model.hybrid.trending import TrendingRecommender
from model.interactions import frame_to_events
from model.recommender import Recommender, StaticRecommenderSource
from streamrec.session_store import SessionStore
from streamrec.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class HybridTraining:
    hybrid: HybridRecommender
    examples: Examples
    report: TrainingReport
    seconds: dict[str, float]


def hybrid_sources(train: pd.DataFrame, client: redis.Redis, key_prefix: str, stats: ItemStats,
                   seed: int = 7) -> dict[str, Recommender]:
    """The candidate sources, fitted on `train` (offline ones) or living under `key_prefix` (streaming ones)."""
    from model.baselines.als import AlsRecommender
    from model.baselines.item_cosine import ItemCosineRecommender
    from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
    from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender

    return {
        "session-knn-stream": StreamingSessionKNNRecommender(client, key_prefix),
        "session-cooccurrence": SessionCooccurrenceRecommender(client, key_prefix),
        "item-cosine": ItemCosineRecommender().fit(train),
        "als": AlsRecommender(seed=seed).fit(train),
        "trending": TrendingRecommender(stats),
    }


def train_hybrid(train: pd.DataFrame, client: redis.Redis, key_prefix: str, settings: Settings,
                 log_events: int = 20_000, config: RankerConfig | None = None,
                 progress: bool = True) -> HybridTraining:
    """Log examples on the last `log_events` training events, fit the ranker, return the hybrid to serve."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    train = train.sort_values("ts", kind="mergesort").reset_index(drop=True)
    events = frame_to_events(train)
    cut = max(0, len(events) - log_events)
    earlier = train.iloc[:cut] if cut else train.iloc[:0]
    scratch = settings.model_copy(update={"key_prefix": f"{key_prefix}hybrid-train:",
                                          "trigger_every_nth_page_view": 1})
    store = SessionStore(client, scratch)
    store.delete_namespace()
    try:
        stats = ItemStats()
        logger = ExampleLog(HybridRecommender(hybrid_sources(earlier if len(earlier) else train, client,
                                                             scratch.key_prefix, stats), stats))
        seconds["fit sources"] = time.monotonic() - started
        warm_up(store, StaticRecommenderSource(logger), events[:cut], progress=progress, desc="hybrid: warm-up")
        seconds["warm up"] = time.monotonic() - started - seconds["fit sources"]
        _log_triggers(store, logger, events[cut:], progress)
        seconds["log examples"] = time.monotonic() - started - sum(seconds.values())
    finally:
        store.delete_namespace()
    examples = labelled(logger.logged, train)
    log.info("hybrid: %d triggers logged, %d with a next item, %d with it among the candidates",
             examples.logged, examples.with_next_item, examples.next_in_candidates)
    ranker, report = train_ranker(examples.features, examples.mask, examples.labels, logger.hybrid.feature_names,
                                  config, progress)
    seconds["train ranker"] = time.monotonic() - started - sum(seconds.values())
    served_stats = ItemStats()
    sources = hybrid_sources(train, client, key_prefix, served_stats)
    hybrid = HybridRecommender(sources, served_stats, ranker, fallback=sources["session-cooccurrence"])
    seconds["refit sources"] = time.monotonic() - started - sum(seconds.values())
    return HybridTraining(hybrid, examples, report, {k: round(v, 2) for k, v in seconds.items()})


def _log_triggers(store: SessionStore, logger: ExampleLog, events: list, progress: bool) -> None:
    """The logged stretch through the worker's pipeline, in batches that end at each trigger (as replay does)."""
    now = [events[0].ts] if events else []
    pipeline = RecommendationPipeline(store, StaticRecommenderSource(logger), store.settings, clock=lambda: now[0])
    bar = tqdm(total=len(events), desc="hybrid: log examples", unit="ev", disable=not progress)
    for batch in leak_free_batches(events, store.settings):
        now[0] = batch[-1].ts
        pipeline.confirm(pipeline.prepare(batch))
        bar.update(len(batch))
    bar.close()
