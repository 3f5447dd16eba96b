"""Offline baseline: the most popular items of the training frame (event-weighted counts), per kind."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from model.baselines.session_cooccurrence import EVENT_WEIGHT
from model.bundle_paths import write_manifest
from model.recommender import RecommendationRequest, Recommender, ScoredItem


class PopularityRecommender(Recommender):
    """Same list for everyone, minus what the request excludes; the floor any model must beat."""

    name = "popularity"
    version = "1"

    def __init__(self) -> None:
        self.ranked: dict[str, list[tuple[str, float]]] = {}

    def fit(self, interactions: pd.DataFrame) -> PopularityRecommender:
        frame = interactions.dropna(subset=["item_id"])
        weights = frame["event_type"].map(EVENT_WEIGHT).fillna(1.0)
        scores = weights.groupby([frame["kind"], frame["item_id"].astype(str)]).sum()
        self.ranked = {
            str(kind): sorted(((str(item), float(s)) for (_, item), s in group.items()), key=lambda x: (-x[1], x[0]))
            for kind, group in scores.groupby(level=0)
        }
        return self

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        out: list[ScoredItem] = []
        for item, score in self.ranked.get(request.kind, []):
            if item not in request.exclude:
                out.append(ScoredItem(item, score))
                if len(out) >= request.k:
                    break
        return out

    def save(self, folder: Path) -> Path:
        """ranked.json (each kind's items, best first, with their scores), then the manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ranked.json").write_text(json.dumps(self.ranked))
        write_manifest(folder, self.name, self.version)
        return folder

    @classmethod
    def load(cls, folder: Path) -> PopularityRecommender:
        model = cls()
        ranked = json.loads((folder / "ranked.json").read_text())
        model.ranked = {kind: [(str(item), float(score)) for item, score in rows] for kind, rows in ranked.items()}
        return model
