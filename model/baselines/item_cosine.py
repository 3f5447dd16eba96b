"""Offline baseline: item-item cosine similarity over user-item co-usage, filled up by popularity.

cos(i, j) = users(i and j) / sqrt(users(i) * users(j)) on the binary user x item matrix of the
training frame. A user's score for j sums cos(i, j) over the items i they used (the request's session
context when given, else their training history).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.baselines.popularity import PopularityRecommender
from model.bundle_paths import write_manifest
from model.recommender import RankedColumns, RecommendationRequest, Recommender, ScoredItem
from model.two_tower.examples import query_history
from streamrec.events import PRODUCT


class ItemCosineRecommender(Recommender):
    name = "item-cosine"
    version = "1"

    def __init__(self, neighbours: int = 200, history_cap: int = 50) -> None:
        self.neighbours = neighbours  # kept per item
        self.history_cap = history_cap  # most recent items per user used to count co-usage
        self.similar: dict[tuple[str, str], list[tuple[str, float]]] = {}
        self.histories: dict[tuple[str, str], list[str]] = {}
        self.popularity = PopularityRecommender()
        self._spaces: dict[str, _CodeSpace] = {}  # per kind, the neighbour lists as arrays (built at first use)

    def fit(self, interactions: pd.DataFrame) -> ItemCosineRecommender:
        frame = interactions.dropna(subset=["item_id"]).sort_values("ts", kind="stable")
        pairs = frame[["user_id", "item_id", "kind"]].astype(str).drop_duplicates(keep="last")
        pairs = pairs.groupby(["kind", "user_id"], sort=False).tail(self.history_cap)
        self.histories = {
            (kind, user): list(reversed(group["item_id"].tolist()))
            for (kind, user), group in pairs.groupby(["kind", "user_id"], sort=False)
        }
        self.similar = {}
        for kind, group in pairs.groupby("kind"):
            self.similar.update(self._cosine(str(kind), group))
        self._build_spaces()
        self.popularity.fit(interactions)
        return self

    def _cosine(self, kind: str, pairs: pd.DataFrame) -> dict[tuple[str, str], list[tuple[str, float]]]:
        users = pd.factorize(pairs["user_id"])[0]
        items, names = pd.factorize(pairs["item_id"])
        per_item = np.bincount(items)
        left = pd.DataFrame({"u": users, "i": items})
        co = left.merge(left, on="u", suffixes=("", "_j"))
        co = co[co["i"] != co["i_j"]].groupby(["i", "i_j"]).size().rename("n").reset_index()
        co["cos"] = co["n"] / np.sqrt(per_item[co["i"]] * per_item[co["i_j"]])
        co = co.sort_values(["i", "cos", "i_j"], ascending=[True, False, True]).groupby("i").head(self.neighbours)
        out: dict[tuple[str, str], list[tuple[str, float]]] = {}
        for i, group in co.groupby("i", sort=False):
            out[(kind, str(names[i]))] = list(zip(names[group["i_j"].to_numpy()].astype(str),
                                                  group["cos"].astype(float), strict=True))
        return out

    def _seeds(self, request: RecommendationRequest) -> list[str]:
        seeds = [request.trigger_item] if request.trigger_item else []
        if request.kind == PRODUCT and request.context is not None:
            seeds += list(query_history(request.context))
        if len(seeds) == 0:
            seeds = self.histories.get((request.kind, request.user_id), [])
        return list(dict.fromkeys(seeds))[: self.history_cap]

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self._columns(request).scored()

    def recommend_columns(self, requests: Sequence[RecommendationRequest]) -> list[RankedColumns]:
        return [self._columns(request) for request in requests]

    def _columns(self, request: RecommendationRequest) -> RankedColumns:
        """Summed similarity to the seeds, best first (ties by id), popularity below: the seeds' neighbour lists are
        summed by one bincount over item codes in id order, in the order a loop over them would add (same floats)."""
        seeds = self._seeds(request)
        space = self._space(request.kind)
        found = [space.lists[seed] for seed in seeds if seed in space.lists]
        items: list[str] = []
        values: list[float] = []
        if found and request.k > 0:
            codes = np.concatenate([c for c, _ in found])
            totals = np.bincount(codes, np.concatenate([s for _, s in found]), minlength=len(space.names))
            listed = np.zeros(len(space.names), bool)
            listed[codes] = True
            listed[[space.code[b] for b in (*request.exclude, *seeds) if b in space.code]] = False
            candidates = np.flatnonzero(listed)
            best = candidates[np.lexsort((candidates, -totals[candidates]))][: request.k]
            items, values = space.name_of[best].tolist(), totals[best].tolist()
        if len(items) < request.k:
            # Popularity fills up below every similarity score.
            chosen = set(request.exclude) | set(seeds) | set(items)
            fill = RecommendationRequest(request.user_id, request.k - len(items), request.kind,
                                         exclude=frozenset(chosen))
            floor = min(values, default=1.0)
            popular = self.popularity.recommend(fill)
            top = popular[0].score if popular else 1.0
            items += [p.item_id for p in popular]
            values += [float(floor * 1e-3 * p.score / top) for p in popular]
        return RankedColumns(items, values)

    def _build_spaces(self) -> None:
        """The neighbour lists as arrays, per kind: built when the lists are (fit, load), not in a served batch."""
        by_kind: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(dict)
        for (kind, seed), found in self.similar.items():
            by_kind[kind][seed] = found
        self._spaces = {kind: _CodeSpace.of(lists) for kind, lists in by_kind.items()}

    def _space(self, kind: str) -> _CodeSpace:
        if kind not in self._spaces:
            self._spaces[kind] = _CodeSpace.of({})
        return self._spaces[kind]

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        return [ScoredItem(item, sim) for item, sim in self.similar.get((kind, item_id), [])[:k]]

    def save(self, folder: Path) -> Path:
        """item_cosine.json (settings, neighbour lists, user histories), popularity/ (the fill-in), the manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        self.popularity.save(folder / "popularity")
        state = {
            "neighbours": self.neighbours, "history_cap": self.history_cap,
            "similar": [[kind, item, rows] for (kind, item), rows in self.similar.items()],
            "histories": [[kind, user, items] for (kind, user), items in self.histories.items()],
        }
        (folder / "item_cosine.json").write_text(json.dumps(state))
        write_manifest(folder, self.name, self.version)
        return folder

    @classmethod
    def load(cls, folder: Path) -> ItemCosineRecommender:
        state = json.loads((folder / "item_cosine.json").read_text())
        model = cls(neighbours=state["neighbours"], history_cap=state["history_cap"])
        model.similar = {
            (kind, item): [(str(j), float(sim)) for j, sim in rows] for kind, item, rows in state["similar"]
        }
        model.histories = {(kind, user): list(items) for kind, user, items in state["histories"]}
        model.popularity = PopularityRecommender.load(folder / "popularity")
        model._build_spaces()
        return model


@dataclass
class _CodeSpace:
    """One kind's neighbour lists as arrays: item codes in id order (`names[code]`), similarities."""

    names: list[str]
    code: dict[str, int]
    lists: dict[str, tuple[np.ndarray, np.ndarray]]
    name_of: np.ndarray  # names as an object array: a list of ids by one fancy index

    @classmethod
    def of(cls, similar: dict[str, list[tuple[str, float]]]) -> _CodeSpace:
        names = sorted({item for found in similar.values() for item, _ in found})
        code = {name: j for j, name in enumerate(names)}
        lists = {seed: (np.array([code[item] for item, _ in found], np.int64),
                        np.array([float(sim) for _, sim in found], np.float64)) for seed, found in similar.items()}
        return cls(names, code, lists, np.array(names, dtype=object))
