"""Save any recommender as a new version of a model dir, and load any saved one back by the kind its manifest names.

Loaders import their model inside, so looking for models (the worker between batches) loads no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from model.bundle_paths import publish_version, read_manifest, write_manifest
from model.recommender import Recommender, WithFallback


def publish_model(recommender: Recommender, model_dir: Path) -> Path:
    """Save `recommender` as a new version folder under `model_dir`, atomically; the worker picks it up."""

    def write(folder: Path, version: str) -> None:
        recommender.save(folder)
        write_manifest(folder, read_manifest(folder).kind, version)

    return publish_version(model_dir, write)


def _two_tower(path: Path, fallback: Recommender | None) -> Recommender:
    from model.bundle import ModelBundle
    from model.two_tower.recommender import TwoTowerRecommender

    return TwoTowerRecommender(ModelBundle.load(path), fallback=fallback)


def _session_gru(path: Path) -> Recommender:
    from model.session_gru.recommender import SessionModelRecommender

    return SessionModelRecommender.load(path)


def _popularity(path: Path) -> Recommender:
    from model.baselines.popularity import PopularityRecommender

    return PopularityRecommender.load(path)


def _item_cosine(path: Path) -> Recommender:
    from model.baselines.item_cosine import ItemCosineRecommender

    return ItemCosineRecommender.load(path)


def _als(path: Path) -> Recommender:
    from model.baselines.als import AlsRecommender

    return AlsRecommender.load(path)


def _als_tuned(path: Path) -> Recommender:
    from model.baselines.als_selection import TunedAlsRecommender

    return TunedAlsRecommender.load(path)


def _sequential_rules(path: Path) -> Recommender:
    from model.baselines.sequential_rules import SequentialRulesRecommender

    return SequentialRulesRecommender.load(path)


def _session_knn(path: Path) -> Recommender:
    from model.baselines.session_knn import SessionKNNRecommender

    return SessionKNNRecommender.load(path)


# Kinds without a fallback of their own; the two-tower routes tools and cold starts to its fallback itself.
_LOADERS: dict[str, Callable[[Path], Recommender]] = {
    "session-gru": _session_gru,
    "popularity": _popularity,
    "item-cosine": _item_cosine,
    "sequential-rules": _sequential_rules,
    "session-knn": _session_knn,
    "als": _als,
    "als-tuned": _als_tuned,
}


def saved_kinds() -> list[str]:
    """The kinds `load_recommender` can load."""
    return ["two-tower", "hybrid", *_LOADERS]


def load_recommender(path: Path, fallback: Recommender | None = None,
                     streaming: Mapping[str, Recommender] | None = None) -> Recommender:
    """The recommender saved in `path`, versioned as its manifest says; `fallback` answers what it cannot
    (tools, and for the two-tower cold starts), as the worker's streaming baseline does. A hybrid gets its
    streaming sources from `streaming` (the worker's, by name)."""
    manifest = read_manifest(path)
    if manifest.kind == "hybrid":
        from model.hybrid.saved import load_hybrid

        model = load_hybrid(path, streaming or {}, fallback)
    elif manifest.kind == "two-tower":
        model = _two_tower(path, fallback)
    elif manifest.kind in _LOADERS:
        model = _LOADERS[manifest.kind](path)
    else:
        raise ValueError(f"{path}: unknown saved model kind {manifest.kind!r}; known: {', '.join(saved_kinds())}")
    if manifest.version:
        model.version = manifest.version
    if fallback is not None and manifest.kind not in ("two-tower", "hybrid"):
        model = WithFallback(model, fallback)
    return model
