"""Named model factories, so replay and every protocol put the same models side by side by name.

A factory gets a `ModelContext` (training frame from before the evaluated window, Redis for streaming
models, the synthetic truth when there is one) and returns a fitted `Recommender`. The measurement room adds
the oracle (it knows the synthetic world's planted tastes) with `register_model`. Each factory imports its
model inside, so listing the models (and `streamrec --help`) never loads TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import redis

from model.recommender import Recommender

if TYPE_CHECKING:
    from model.baselines.als_selection import AlsSettings
    from model.bundle import ModelBundle


@dataclass(frozen=True)
class ModelContext:
    train: pd.DataFrame  # interactions frame (see model.interactions), all before the evaluated window
    redis: redis.Redis | None = None  # streaming models keep their state here
    key_prefix: str = "eval:"  # the namespace a streaming model must write under
    truth_path: Path | None = None  # synthetic ground truth (oracle)
    model_dir: Path | None = None  # trained bundles (two-tower, ranker) when not trained here
    seed: int = 7
    epochs: int | None = None  # training epochs for neural models (None: their default)
    als_grid: list[AlsSettings] | None = None  # settings als-tuned chooses among (None: default_grid())


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[ModelContext], Recommender]
    learns_from_stream: bool = False  # True: warmed up by observing events, not by `fit`
    needs_redis: bool = False
    needs_truth: bool = False
    # Retrain at a cadence (replay's --retrain-every): (events of the sliding window, the running model) -> the
    # model to swap in. None: offline models are rebuilt with `build`, streaming-only ones left as they are.
    retrain: Callable[[ModelContext, Recommender], Recommender] | None = None


class ModelUnavailable(RuntimeError):
    """The model's code or inputs are not there (yet); the message says what is missing."""


def _popularity(context: ModelContext) -> Recommender:
    from model.baselines.popularity import PopularityRecommender

    return PopularityRecommender().fit(context.train)


def _als(context: ModelContext) -> Recommender:
    from model.baselines.als import AlsRecommender

    return AlsRecommender(seed=context.seed).fit(context.train)


def _als_tuned(context: ModelContext) -> Recommender:
    from model.baselines.als_selection import TunedAlsRecommender

    return TunedAlsRecommender(context.als_grid, seed=context.seed).fit(context.train)


def _item_cosine(context: ModelContext) -> Recommender:
    from model.baselines.item_cosine import ItemCosineRecommender

    return ItemCosineRecommender().fit(context.train)


def _sequential_rules(context: ModelContext) -> Recommender:
    from model.baselines.sequential_rules import SequentialRulesRecommender

    return SequentialRulesRecommender().fit(context.train)


def _session_knn(context: ModelContext) -> Recommender:
    from model.baselines.session_knn import SessionKNNRecommender

    return SessionKNNRecommender().fit(context.train)


def _session_gru(context: ModelContext) -> Recommender:
    from model.session_gru.recommender import SessionModelRecommender

    overrides = {"seed": context.seed} | ({"epochs": context.epochs} if context.epochs else {})
    return SessionModelRecommender(**overrides).fit(context.train)


def _session_cooccurrence(context: ModelContext) -> Recommender:
    from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender

    if context.redis is None:
        raise ModelUnavailable("session-cooccurrence keeps its state in Redis: no Redis client given")
    return SessionCooccurrenceRecommender(context.redis, context.key_prefix)


def _session_knn_stream(context: ModelContext) -> Recommender:
    from model.baselines.streaming_session_knn import StreamingSessionKNNRecommender

    if context.redis is None:
        raise ModelUnavailable("session-knn-stream keeps its index in Redis: no Redis client given")
    return StreamingSessionKNNRecommender(context.redis, context.key_prefix)


def _tool_transitions(context: ModelContext) -> Recommender:
    from model.baselines.tool_transitions import ToolTransitionRecommender

    if context.redis is None:
        raise ModelUnavailable("tool-transitions keeps its counts in Redis: no Redis client given")
    return ToolTransitionRecommender(context.redis, context.key_prefix)


def _tool_session_transitions(context: ModelContext) -> Recommender:
    from model.baselines.tool_session_transitions import ToolSessionTransitionRecommender

    if context.redis is None:
        raise ModelUnavailable("tool-session-transitions keeps its counts in Redis: no Redis client given")
    return ToolSessionTransitionRecommender(context.redis, context.key_prefix)


# One bundle serves both entries of a history encoder in a run: keyed by the training frame object and the encoder.
_BUNDLE_CACHE: list[tuple[pd.DataFrame, str, ModelBundle]] = []


def _bundle(context: ModelContext, history_encoder: str = "mean") -> ModelBundle:
    from model.training import TrainingConfig, train_bundle

    for frame, encoder, bundle in _BUNDLE_CACHE:
        if frame is context.train and encoder == history_encoder:
            return bundle
    config = TrainingConfig()
    config.two_tower.epochs = context.epochs or config.two_tower.epochs
    config.two_tower.history_encoder = history_encoder
    bundle = train_bundle(context.train, config, progress=True, trained_on="evaluation window warm-up")
    _BUNDLE_CACHE[:] = [entry for entry in _BUNDLE_CACHE if entry[0] is context.train] + [
        (context.train, history_encoder, bundle)]
    return bundle


def _two_tower(use_ranker: bool, history_encoder: str = "mean") -> Callable[[ModelContext], Recommender]:
    def build(context: ModelContext) -> Recommender:
        from model.baselines.popularity import PopularityRecommender
        from model.two_tower.recommender import TwoTowerRecommender

        fallback = PopularityRecommender().fit(context.train)
        model = TwoTowerRecommender(_bundle(context, history_encoder), fallback=fallback, use_ranker=use_ranker)
        if use_ranker and model.rank is None:
            raise ModelUnavailable("the trained bundle has no ranker")
        return model

    return build


_SPECS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> None:
    _SPECS[spec.name] = spec


for _spec in (
    ModelSpec("popularity", "most used items before the window", _popularity),
    ModelSpec("item-cosine", "item-item cosine over co-usage", _item_cosine),
    ModelSpec("sequential-rules", "what sessions opened after the newest item, nearest first (SR)", _sequential_rules),
    ModelSpec("session-knn", "V-SKNN session neighbours", _session_knn),
    ModelSpec("als", "implicit ALS matrix factorisation (returning users; session items recompute the user)", _als),
    ModelSpec("als-tuned", "ALS with factors/alpha/regularization chosen on a per-user purchase holdout of its own "
                           "training frame, refitted on all of it (19 fits)", _als_tuned),
    ModelSpec("session-gru", "GRU + attention next-item model over the session (trained before the window)",
              _session_gru),
    ModelSpec(
        "session-cooccurrence", "streaming co-occurrence in Redis (the worker's default)",
        _session_cooccurrence, learns_from_stream=True, needs_redis=True,
    ),
    ModelSpec(
        "session-knn-stream", "V-SKNN over every worker's sessions in Redis, fresh to the event",
        _session_knn_stream, learns_from_stream=True, needs_redis=True,
    ),
    ModelSpec(
        "tool-transitions", "streaming directed tool transitions in Redis (what users used next after a tool)",
        _tool_transitions, learns_from_stream=True, needs_redis=True,
    ),
    ModelSpec(
        "tool-session-transitions",
        "tool transitions counted within sessions only, shrunk towards popularity (not served: see docs/models.md)",
        _tool_session_transitions, learns_from_stream=True, needs_redis=True,
    ),
    ModelSpec("two-tower", "two-tower retrieval over FAISS (trained before the window)", _two_tower(False)),
    ModelSpec("two-tower-ranker", "two-tower candidates ranked by wide & deep", _two_tower(True)),
    ModelSpec("two-tower-gru", "two-tower whose query tower reads the session with the GRU + attention encoder",
              _two_tower(False, "gru")),
):
    register_model(_spec)


def model_names() -> list[str]:
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    if name not in _SPECS:
        raise ModelUnavailable(f"unknown model {name!r}; known: {', '.join(_SPECS)}")
    return _SPECS[name]


def fit_and_publish(name: str, train: pd.DataFrame, model_dir: Path, epochs: int | None = None) -> Path:
    """Fit the named model on `train` and save it as a new version under `model_dir`, where the worker serves it
    (`streamrec train --model NAME`); models whose state lives in Redis or in the truth cannot be published."""
    from model.saved_models import publish_model

    spec = get_spec(name)
    if spec.learns_from_stream or spec.needs_truth:
        raise ModelUnavailable(f"{name} is not fitted offline: there is nothing to save for the worker")
    return publish_model(spec.build(ModelContext(train=train, epochs=epochs)), model_dir)
