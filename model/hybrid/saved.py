"""The hybrid as a saved model version the worker serves: ranker, item statistics, the offline sources in subfolders.

Streaming sources (state in Redis) are not saved: the loader is handed the worker's own (the same objects its
fallback uses, so each event is observed once), and the trending list is rebuilt from the loaded statistics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from model.bundle_paths import write_manifest
from model.hybrid.item_stats import ItemStats
from model.hybrid.ranker import ListwiseRanker
from model.hybrid.recommender import HybridRecommender
from model.hybrid.trending import TrendingRecommender
from model.recommender import Recommender

KIND = "hybrid"
STREAMING = ("session-knn-stream", "session-cooccurrence")


def save_hybrid(hybrid: HybridRecommender, folder: Path) -> Path:
    if hybrid.ranker is None:
        raise ValueError("an untrained hybrid (no ranker) is not saved: train it first")
    folder.mkdir(parents=True, exist_ok=True)
    hybrid.ranker.save(folder / "ranker")
    if hybrid.conversion is not None:
        hybrid.conversion.save(folder / "conversion")
    stats = hybrid.stats
    (folder / "item_stats.json").write_text(json.dumps({
        "half_life_ms": stats.half_life_ms, "total": stats.total, "recent": stats.recent,
        "first_seen_ms": stats.first_seen_ms, "category": stats.category, "price": stats.price,
        "now_ms": stats.now_ms,
    }))
    kinds: dict[str, str] = {}
    for name, source in hybrid.sources.items():
        if name in STREAMING:
            kinds[name] = "streaming"
        elif isinstance(source, TrendingRecommender):
            kinds[name] = "trending"
        else:
            source.save(folder / "sources" / name)
            kinds[name] = "saved"
    (folder / "hybrid.json").write_text(json.dumps({
        "sources": kinds, "depth": hybrid.depth, "max_candidates": hybrid.max_candidates,
        "features": hybrid.feature_names,
    }))
    write_manifest(folder, KIND, hybrid.version)
    return folder


def load_hybrid(folder: Path, streaming: Mapping[str, Recommender], fallback: Recommender | None) -> HybridRecommender:
    from model.saved_models import load_recommender

    meta = json.loads((folder / "hybrid.json").read_text())
    raw = json.loads((folder / "item_stats.json").read_text())
    stats = ItemStats(half_life_ms=raw["half_life_ms"], total=raw["total"],
                      recent={k: (v[0], v[1]) for k, v in raw["recent"].items()},
                      first_seen_ms=raw["first_seen_ms"], category=raw["category"], price=raw["price"],
                      now_ms=raw["now_ms"])
    sources: dict[str, Recommender] = {}
    for name, kind in meta["sources"].items():
        if kind == "streaming":
            if name not in streaming:
                raise ValueError(f"{folder}: the hybrid needs the streaming source {name!r}, which was not given")
            sources[name] = streaming[name]
        elif kind == "trending":
            sources[name] = TrendingRecommender(stats)
        else:
            sources[name] = load_recommender(folder / "sources" / name)
    hybrid = HybridRecommender(sources, stats, ListwiseRanker.load(folder / "ranker"), depth=meta["depth"],
                               max_candidates=meta["max_candidates"], fallback=fallback)
    if (folder / "conversion").exists():
        hybrid.conversion = ListwiseRanker.load(folder / "conversion")
    if hybrid.feature_names != meta["features"]:
        raise ValueError(f"{folder}: saved with features {meta['features']}, this code computes {hybrid.feature_names}")
    return hybrid
