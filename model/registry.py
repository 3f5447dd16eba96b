"""Named model factories, so replay and every protocol put the same models side by side by name.

A factory gets a `ModelContext` (training frame from before the evaluated window, Redis for streaming
models, the synthetic truth when there is one) and returns a fitted `Recommender`. The measurement room adds
the oracle (it knows the synthetic world's planted tastes) with `register_model`. Models owned by other
modules are imported lazily: a model whose module is missing is listed as unavailable with the reason.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import redis

from model.recommender import Recommender


@dataclass(frozen=True)
class ModelContext:
    train: pd.DataFrame  # interactions frame (see model.interactions), all before the evaluated window
    redis: redis.Redis | None = None  # streaming models keep their state here
    key_prefix: str = "eval:"  # the namespace a streaming model must write under
    truth_path: Path | None = None  # synthetic ground truth (oracle)
    model_dir: Path | None = None  # trained bundles (two-tower, ranker) when not trained here
    seed: int = 7
    epochs: int | None = None  # training epochs for neural models (None: their default)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[[ModelContext], Recommender]
    learns_from_stream: bool = False  # True: warmed up by observing events, not by `fit`
    needs_redis: bool = False
    needs_truth: bool = False


class ModelUnavailable(RuntimeError):
    """The model's code or inputs are not there (yet); the message says what is missing."""


def recommender_class(module_name: str, class_name: str | None = None) -> type[Recommender]:
    """The Recommender subclass defined in `module_name` (by name, or the only one defined there)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ModelUnavailable(f"module {module_name} is not there: {error}") from error
    if class_name is not None:
        return getattr(module, class_name)
    defined = [
        obj for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Recommender) and obj.__module__ == module_name and not inspect.isabstract(obj)
    ]
    if len(defined) != 1:
        names = [c.__name__ for c in defined]
        raise ModelUnavailable(f"expected one Recommender class in {module_name}, found {names}")
    return defined[0]


def _fit(module_name: str, class_name: str | None = None) -> Callable[[ModelContext], Recommender]:
    def build(context: ModelContext) -> Recommender:
        return recommender_class(module_name, class_name)().fit(context.train)

    return build


def _session_cooccurrence(context: ModelContext) -> Recommender:
    from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender

    if context.redis is None:
        raise ModelUnavailable("session-cooccurrence keeps its state in Redis: no Redis client given")
    return SessionCooccurrenceRecommender(context.redis, context.key_prefix)


# One bundle serves both two-tower entries of a run: keyed by the training frame object it was trained on.
_BUNDLE_CACHE: list[tuple[pd.DataFrame, object]] = []


def _bundle(context: ModelContext) -> object:
    try:
        from model.training import TrainingConfig, train_bundle
    except ModuleNotFoundError as error:
        raise ModelUnavailable(f"the two-tower training code is not there: {error}") from error
    for frame, bundle in _BUNDLE_CACHE:
        if frame is context.train:
            return bundle
    config = TrainingConfig()
    config.two_tower.epochs = context.epochs or config.two_tower.epochs
    bundle = train_bundle(context.train, config, progress=True, trained_on="evaluation window warm-up")
    _BUNDLE_CACHE[:] = [(context.train, bundle)]
    return bundle


def _two_tower(use_ranker: bool) -> Callable[[ModelContext], Recommender]:
    def build(context: ModelContext) -> Recommender:
        from model.baselines.popularity import PopularityRecommender
        from model.two_tower.recommender import TwoTowerRecommender

        fallback = PopularityRecommender().fit(context.train)
        model = TwoTowerRecommender(_bundle(context), fallback=fallback, use_ranker=use_ranker)
        if use_ranker and model.rank is None:
            raise ModelUnavailable("the trained bundle has no ranker")
        return model

    return build


_SPECS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> None:
    _SPECS[spec.name] = spec


for _spec in (
    ModelSpec("popularity", "most used items before the window", _fit("model.baselines.popularity")),
    ModelSpec("item-cosine", "item-item cosine over co-usage", _fit("model.baselines.item_cosine")),
    ModelSpec("session-knn", "V-SKNN session neighbours", _fit("model.baselines.session_knn")),
    ModelSpec(
        "session-cooccurrence", "streaming co-occurrence in Redis (the worker's default)",
        _session_cooccurrence, learns_from_stream=True, needs_redis=True,
    ),
    ModelSpec("two-tower", "two-tower retrieval over FAISS (trained before the window)", _two_tower(False)),
    ModelSpec("two-tower-ranker", "two-tower candidates ranked by wide & deep", _two_tower(True)),
):
    register_model(_spec)


def model_names() -> list[str]:
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    if name not in _SPECS:
        raise ModelUnavailable(f"unknown model {name!r}; known: {', '.join(_SPECS)}")
    return _SPECS[name]
