"""Which recommender the worker serves: the newest trained bundle when one exists, else the streaming baseline."""

from __future__ import annotations

import redis

from consumers.recommendation_pipeline import RecommenderSource, StaticRecommenderSource
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from streamrec.settings import Settings


def make_recommender_source(settings: Settings, client: redis.Redis) -> RecommenderSource:
    """The recommender source for a worker or a replay running under `settings.key_prefix`."""
    return StaticRecommenderSource(SessionCooccurrenceRecommender(client, settings.key_prefix))
