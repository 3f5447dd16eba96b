"""Registers the hybrid in the model registry (it trains through the worker's pipeline, a room above `model`).

Importing this module (the measurement room does) adds "hybrid" (ranked by the listwise ranker) and "hybrid-rrf"
(the same union ordered by reciprocal-rank fusion: the untrained blend, a baseline) beside the library's models.
"""

from __future__ import annotations

from model.recommender import Recommender
from model.registry import ModelContext, ModelSpec, ModelUnavailable, register_model
from streamrec.settings import Settings


def _hybrid(context: ModelContext) -> Recommender:
    from consumers.training.hybrid_training import train_hybrid

    if context.redis is None:
        raise ModelUnavailable("the hybrid's streaming sources keep their state in Redis: no Redis client given")
    return train_hybrid(context.train, context.redis, context.key_prefix, Settings()).hybrid


def _retrain_hybrid(context: ModelContext, running: Recommender) -> Recommender:
    """A new hybrid from the sliding window that keeps the running one's item statistics (they have seen the stream
    to this moment, as a worker's loaded statistics have once it observed since the load)."""
    from model.hybrid.recommender import HybridRecommender

    new = _hybrid(context)
    if isinstance(running, HybridRecommender) and isinstance(new, HybridRecommender):
        new.adopt_stats(running.stats)
    return new


def _hybrid_rrf(context: ModelContext) -> Recommender:
    from consumers.training.hybrid_training import hybrid_sources
    from model.hybrid.item_stats import ItemStats
    from model.hybrid.recommender import HybridRecommender

    if context.redis is None:
        raise ModelUnavailable("the hybrid's streaming sources keep their state in Redis: no Redis client given")
    stats = ItemStats()
    sources = hybrid_sources(context.train, context.redis, context.key_prefix, stats)
    hybrid = HybridRecommender(sources, stats, None, fallback=sources["session-cooccurrence"])
    hybrid.name = "hybrid-rrf"
    return hybrid


register_model(ModelSpec("hybrid", "union of every source, ranked by the listwise ranker trained on replayed triggers",
                         _hybrid, learns_from_stream=True, needs_redis=True, retrain=_retrain_hybrid))
register_model(ModelSpec("hybrid-rrf", "union of every source, ordered by reciprocal-rank fusion (untrained)",
                         _hybrid_rrf, learns_from_stream=True, needs_redis=True))
