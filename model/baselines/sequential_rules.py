"""Offline baseline: sequential rules (SR, Ludewig & Jannach 2018), what sessions went on to after an item.

For every session (time order, one kind at a time) each item b adds 1/gap to the rule a -> b for the items a up
to `steps` positions before it (gap = how many positions back; a -> a is not a rule). Each item keeps its
`neighbours` strongest rules. A request is scored from the rules of the session's newest item (the trigger's);
when that item has none, from the newest earlier item of the session that has some. Unlike co-occurrence and
session-kNN, which count sessions that share items in any order, this keeps the direction and the distance: what
people open after this item, nearest first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pandas as pd

from model.bundle_paths import write_manifest
from model.recommender import RecommendationRequest, Recommender, ScoredItem


class SequentialRulesRecommender(Recommender):
    name = "sequential-rules"
    version = "1"

    def __init__(self, steps: int = 10, neighbours: int = 200) -> None:
        self.steps = steps  # how far back in the session an item's rules reach
        self.neighbours = neighbours  # strongest rules kept per item
        self.rules: dict[tuple[str, str], list[tuple[str, float]]] = {}

    def fit(self, interactions: pd.DataFrame) -> SequentialRulesRecommender:
        frame = interactions.dropna(subset=["item_id", "session_id"]).sort_values("ts", kind="stable")
        weights: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for (kind, _), items in frame.groupby(["kind", "session_id"], sort=False)["item_id"]:
            sequence = items.astype(str).tolist()
            for at, item in enumerate(sequence):
                for gap in range(1, min(self.steps, at) + 1):
                    before = sequence[at - gap]
                    if before != item:
                        weights[(str(kind), before)][item] += 1.0 / gap
        self.rules = {
            key: sorted(targets.items(), key=lambda kv: (-kv[1], kv[0]))[: self.neighbours]
            for key, targets in weights.items()
        }
        return self

    def _seed(self, request: RecommendationRequest) -> str | None:
        newest = [request.trigger_item] if request.trigger_item else []
        if request.context is not None:
            newest += list(request.context.recent_items)
        return next((item for item in newest if (request.kind, item) in self.rules), None)

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        seed = self._seed(request)
        if seed is None:
            return []
        rules = self.rules[(request.kind, seed)]
        kept = [ScoredItem(item, weight) for item, weight in rules if item not in request.exclude]
        return kept[: request.k]

    def similar_items(self, item_id: str, k: int, kind: str = "product") -> list[ScoredItem]:
        return [ScoredItem(item, weight) for item, weight in self.rules.get((kind, item_id), [])[:k]]

    def save(self, folder: Path) -> Path:
        """sequential_rules.json (settings and every item's rules) and the manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {"steps": self.steps, "neighbours": self.neighbours,
                 "rules": [[kind, item, rows] for (kind, item), rows in self.rules.items()]}
        (folder / "sequential_rules.json").write_text(json.dumps(state))
        write_manifest(folder, self.name, self.version)
        return folder

    @classmethod
    def load(cls, folder: Path) -> SequentialRulesRecommender:
        state = json.loads((folder / "sequential_rules.json").read_text())
        model = cls(steps=state["steps"], neighbours=state["neighbours"])
        model.rules = {(kind, item): [(str(j), float(w)) for j, w in rows] for kind, item, rows in state["rules"]}
        return model
