"""Train the hybrid from the live path: replay the end of the training window through the worker's pipeline, log
every trigger's candidates and features, label them with what the session did next, fit the listwise ranker.

Time order throughout: the sources are fitted (offline ones) or warmed up (streaming ones) on the events before the
logged stretch, the stretch is replayed with a trigger on every page view in a scratch namespace (deleted after),
and the ranker's validation split is the newest share of the logged triggers. The served hybrid keeps the offline
sources the ranker was trained with; its streaming sources and item statistics start fresh and learn the stream by
observing it (replay's warm-up, or the worker's own events).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import redis
from tqdm import tqdm

from consumers.replay.batching import leak_free_batches
from consumers.replay.warm_up import warm_up
from consumers.worker.recommendation_pipeline import RecommendationPipeline
from model.hybrid.conversion import ConversionReport, conversion_examples, train_conversion
from model.hybrid.example_log import ExampleLog, Examples, labelled
from model.hybrid.item_stats import ItemStats
from model.hybrid.ranker import RankerConfig, TrainingReport, train_ranker
from model.hybrid.recommender import HybridRecommender
from model.hybrid.trending import TrendingRecommender
from model.interactions import frame_to_events
from model.recommender import Recommender, StaticRecommenderSource
from streamrec.session_store import SessionStore
from streamrec.settings import Settings

if TYPE_CHECKING:
    from model.baselines.als_selection import AlsSettings

log = logging.getLogger(__name__)


@dataclass
class HybridTraining:
    hybrid: HybridRecommender
    examples: Examples
    report: TrainingReport
    seconds: dict[str, float]
    conversion: ConversionReport


def hybrid_sources(train: pd.DataFrame, client: redis.Redis, key_prefix: str, stats: ItemStats,
                   seed: int = 7, neural: bool = True, als: AlsSettings | None = None,
                   als_grid: list[AlsSettings] | None = None) -> dict[str, Recommender]:
    """The candidate sources, fitted on `train` (offline ones) or living under `key_prefix` (streaming ones).

    The ALS source: with `als_grid`, its settings are chosen on a per-user purchase holdout of `train` itself and
    refitted on all of it (`TunedAlsRecommender`, saved with its choice); else `als` (default: implicit's), for
    a caller that ran the selection on comparable data.
    """
    from model.baselines.als_selection import AlsSettings, TunedAlsRecommender
    from model.baselines.item_cosine import ItemCosineRecommender
    from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
    from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender

    als_source = TunedAlsRecommender(als_grid, seed=seed) if als_grid else (als or AlsSettings()).recommender(seed=seed)
    sources: dict[str, Recommender] = {
        "session-knn-stream": StreamingSessionKNNRecommender(client, key_prefix),
        "session-cooccurrence": SessionCooccurrenceRecommender(client, key_prefix),
        "item-cosine": ItemCosineRecommender().fit(train),
        "als": als_source.fit(train),
        "trending": TrendingRecommender(stats),
    }
    if neural:
        sources["two-tower-gru"] = _session_encoder(train, seed)
    return sources


def _session_encoder(train: pd.DataFrame, seed: int) -> Recommender:
    """The GRU + attention session encoder as the query tower of FAISS retrieval (retrieval only: the hybrid ranks)."""
    from model.training import TrainingConfig, train_bundle
    from model.two_tower.recommender import TwoTowerRecommender

    config = TrainingConfig(ranker=None)
    config.two_tower.history_encoder = "gru"
    config.two_tower.seed = seed
    bundle = train_bundle(train, config, progress=True, trained_on="hybrid: events before the logged stretch")
    return TwoTowerRecommender(bundle, use_ranker=False)


def train_hybrid(train: pd.DataFrame, client: redis.Redis, key_prefix: str, settings: Settings,
                 log_events: int = 40_000, config: RankerConfig | None = None, neural: bool = True,
                 progress: bool = True, als_grid: list[AlsSettings] | None = None) -> HybridTraining:
    """Log examples on the last `log_events` training events, fit the ranker, return the hybrid to serve.

    The served hybrid keeps the offline sources fitted before the logged stretch (the ranker learned their scores
    as they are then; refitting on the stretch would change what it learned on and double the training time); the
    streaming sources and item statistics are rebuilt under `key_prefix` from the stream they observe. With
    `als_grid` the ALS source's settings are chosen among it on that same earlier part (`hybrid_sources`).
    """
    seconds: dict[str, float] = {}
    started = time.monotonic()
    train = train.sort_values("ts", kind="mergesort").reset_index(drop=True)
    events = frame_to_events(train)
    cut = max(len(events) - log_events, len(events) // 2)  # at most the newer half: the sources need a past
    earlier = train[train["ts"] < events[cut].ts] if cut < len(events) else train
    scratch = settings.model_copy(update={"key_prefix": f"{key_prefix}hybrid-train:",
                                          "trigger_every_nth_page_view": 1})
    store = SessionStore(client, scratch)
    store.delete_namespace()
    try:
        stats = ItemStats()
        fitted_on = earlier if len(earlier) else train
        sources = hybrid_sources(fitted_on, client, scratch.key_prefix, stats, neural=neural, als_grid=als_grid)
        logger = ExampleLog(HybridRecommender(sources, stats))
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
    conversion, conversion_report = train_conversion(conversion_examples(logger.logged, train),
                                                     logger.hybrid.feature_names, list(sources), ranker, config,
                                                     progress)
    seconds["train conversion"] = time.monotonic() - started - sum(seconds.values())
    hybrid = _served(sources, client, key_prefix, ranker)
    hybrid.conversion = conversion
    return HybridTraining(hybrid, examples, report, {k: round(v, 2) for k, v in seconds.items()},
                          conversion_report)


def _served(logged_with: dict[str, Recommender], client: redis.Redis, key_prefix: str,
            ranker) -> HybridRecommender:
    """The sources the ranker was trained with, streaming ones moved to `key_prefix` with fresh state."""
    from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
    from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender

    stats = ItemStats()
    sources: dict[str, Recommender] = {}
    for name, source in logged_with.items():
        if isinstance(source, StreamingSessionKNNRecommender):
            sources[name] = StreamingSessionKNNRecommender(client, key_prefix)
        elif isinstance(source, SessionCooccurrenceRecommender):
            sources[name] = SessionCooccurrenceRecommender(client, key_prefix)
        elif isinstance(source, TrendingRecommender):
            sources[name] = TrendingRecommender(stats)
        else:
            sources[name] = source
    return HybridRecommender(sources, stats, ranker, fallback=sources["session-cooccurrence"])


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


def publish_hybrid(train: pd.DataFrame, model_dir, settings: Settings, log_events: int = 40_000,
                   neural: bool = True, progress: bool = True, tune_als: bool = False):
    """Train the hybrid on `train` (examples logged in a scratch namespace) and save it as a new version under
    `model_dir`, with item statistics of the whole frame, for the worker to serve with its own streaming sources.

    `tune_als`: the ALS source's settings are chosen among `compact_grid()` (5 fits) on the frame the sources are
    fitted on; the choice is saved in the source's als.json (sources/als/als.json, "selection").
    """
    import uuid

    from model.baselines.als_selection import TunedAlsRecommender, compact_grid
    from model.saved_models import publish_model

    client = settings.redis_client()
    scratch = f"{settings.key_prefix}train-{uuid.uuid4().hex[:8]}:"
    trained = train_hybrid(train, client, scratch, settings, log_events=log_events, neural=neural,
                           progress=progress, als_grid=compact_grid() if tune_als else None)
    trained.hybrid.adopt_stats(ItemStats.from_frame(train))
    als = trained.hybrid.sources.get("als")
    if isinstance(als, TunedAlsRecommender) and als.selection is not None:
        log.info("hybrid: ALS source fitted with %s, chosen on %d holdout users", als.selection.chosen,
                 als.selection.holdout_users)
    path = publish_model(trained.hybrid, model_dir)
    log.info("hybrid published to %s (%s)", path, trained.seconds)
    return path, trained
