"""V-SKNN session-kNN baseline (Ludewig & Jannach 2018): score items by the sessions most like this one.

The current session's items are weighted by recency; a past session's similarity is the summed weight of
the items it shares; the `k` most similar of the `sample_size` most recent candidate sessions vote for
their items with that similarity. Pure numpy with CSR-style arrays, so it fits 1M events in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from model.bundle_paths import write_manifest
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PRODUCT

T = TypeVar("T")


def query_weights(items_newest_first: Sequence[T], max_len: int, weighting: str) -> dict[T, float]:
    """The current session's item weights: the newest `max_len` items, decaying with distance from the newest."""
    items = list(items_newest_first)[:max_len]
    n = len(items)
    weights: dict[T, float] = {}
    for distance, item in enumerate(items):  # the newest occurrence of an item sets its weight
        if item in weights:
            continue
        if weighting == "linear":
            weights[item] = (n - distance) / n
        elif weighting == "div":
            weights[item] = 1.0 / (distance + 1)
        else:
            weights[item] = 1.0
    return weights


def ranked_codes(scores: np.ndarray, wanted: int) -> list[int]:
    """The `wanted` best positive-scored codes, score descending, ties to the smaller code (item id order)."""
    positive = np.flatnonzero(scores > 0)
    return positive[np.lexsort((positive, -scores[positive]))][:wanted].tolist()


class SessionKNNRecommender(Recommender):
    """Vector session-kNN over an interactions frame (`session_id`, `item_id`, `ts`); popularity when cold."""

    name = "session-knn"
    version = "1"

    def __init__(
        self,
        k: int = 100,
        sample_size: int = 500,
        weighting: str = "linear",
        idf: bool = False,
        max_len: int = 20,
    ) -> None:
        if weighting not in ("linear", "div", "same"):
            raise ValueError(f"weighting must be linear, div or same, not {weighting!r}")
        self.k = k  # neighbour sessions that vote
        self.sample_size = sample_size  # only the most recent candidate sessions are compared
        self.weighting = weighting  # how a session item's weight decays with its distance from the newest
        self.idf = idf  # weight votes by log(n_sessions / sessions with the item)
        self.max_len = max_len  # the most recent items of the current session used
        self.items: list[str] = []
        self.index: dict[str, int] = {}

    # --- fitting --------------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame) -> SessionKNNRecommender:
        """Index sessions (ordered by their last event: later = more recent) and item posting lists."""
        frame = interactions[interactions["item_id"].notna()]
        if "kind" in frame:
            frame = frame[frame["kind"] == PRODUCT]
        item_ids = frame["item_id"].astype(str)
        self.items = sorted(item_ids.unique())
        self.index = {item: i for i, item in enumerate(self.items)}
        codes = item_ids.map(self.index).to_numpy(dtype=np.int64)
        last_ts = frame.groupby("session_id", sort=False)["ts"].transform("max")
        recency = pd.DataFrame({"session": frame["session_id"].to_numpy(), "last": last_ts.to_numpy(), "item": codes})
        # Recency: a session's last event, ties by session id (the streaming index orders sessions the same way).
        firsts = recency.drop_duplicates("session").assign(key=lambda f: f["session"].astype(str))
        session_rank = firsts.sort_values(["last", "key"], kind="stable")["session"]
        order = pd.Series(np.arange(len(session_rank)), index=session_rank.to_numpy())
        recency["sid"] = order.loc[recency["session"].to_numpy()].to_numpy()
        self._index_sessions(recency["sid"].to_numpy(dtype=np.int64), codes, len(session_rank))
        return self

    def fit_sessions(
        self, session_ids: np.ndarray, items: np.ndarray, item_names: Sequence[str]
    ) -> SessionKNNRecommender:
        """Fast path for benchmarks: `session_ids` already numbered in time order, `items` as int codes."""
        self.items = list(item_names)
        self.index = {item: i for i, item in enumerate(self.items)}
        _, sids = np.unique(session_ids, return_inverse=True)
        self._index_sessions(sids.astype(np.int64), np.asarray(items, dtype=np.int64), int(sids.max()) + 1)
        return self

    def _index_sessions(self, sids: np.ndarray, codes: np.ndarray, n_sessions: int) -> None:
        pairs = np.unique(sids * len(self.items) + codes)  # each (session, item) once, sorted by session
        pair_sessions, pair_items = pairs // len(self.items), pairs % len(self.items)
        self.n_sessions = n_sessions
        self.session_ptr = np.r_[0, np.cumsum(np.bincount(pair_sessions, minlength=n_sessions))]
        self.session_items = pair_items
        by_item = np.lexsort((-pair_sessions, pair_items))  # per item, most recent session first
        self.item_ptr = np.r_[0, np.cumsum(np.bincount(pair_items, minlength=len(self.items)))]
        self.item_sessions = pair_sessions[by_item]
        sessions_with_item = np.diff(self.item_ptr)
        self.item_idf = np.log(n_sessions / np.maximum(sessions_with_item, 1))
        self.popular = np.argsort(-sessions_with_item, kind="stable")[:1000]

    # --- scoring --------------------------------------------------------------------------------
    def _query_weights(self, codes_newest_first: Sequence[int]) -> dict[int, float]:
        return query_weights(codes_newest_first, self.max_len, self.weighting)

    def item_scores(self, codes_newest_first: Sequence[int]) -> np.ndarray:
        """Score of every item code for a session given as item codes, newest first (zeros when unknown)."""
        scores = np.zeros(len(self.items))
        weights = self._query_weights(codes_newest_first)
        if not weights:
            return scores
        postings = [
            self.item_sessions[self.item_ptr[c] : min(self.item_ptr[c] + self.sample_size, self.item_ptr[c + 1])]
            for c in weights
        ]
        candidates = np.concatenate(postings)
        if not len(candidates):  # items that no training session contains
            return scores
        entry_weights = np.repeat(np.fromiter(weights.values(), dtype=float), [len(p) for p in postings])
        sessions, inverse = np.unique(candidates, return_inverse=True)
        similarity = np.bincount(inverse, weights=entry_weights)
        recent = slice(max(0, len(sessions) - self.sample_size), None)  # ids are in time order
        sessions, similarity = sessions[recent], similarity[recent]
        if len(sessions) > self.k:  # the k most similar, ties to the more recent; then back in time order
            best = np.sort(np.lexsort((-sessions, -similarity))[: self.k])
            sessions, similarity = sessions[best], similarity[best]
        starts, ends = self.session_ptr[sessions], self.session_ptr[sessions + 1]
        voted = np.concatenate([self.session_items[s:e] for s, e in zip(starts, ends, strict=True)])
        votes = np.repeat(similarity, ends - starts)
        if self.idf:
            votes = votes * self.item_idf[voted]
        return np.bincount(voted, weights=votes, minlength=len(self.items)).astype(float)

    def top_codes(self, codes_newest_first: Sequence[int], k: int) -> np.ndarray:
        """The `k` best item codes (popularity fills in when fewer items have a score)."""
        scores = self.item_scores(codes_newest_first)
        top = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        if len(top) < k:
            fill = [c for c in self.popular if c not in set(top.tolist())][: k - len(top)]
            top = np.r_[top, np.asarray(fill, dtype=top.dtype)]
        return top

    # --- the Recommender interface -------------------------------------------------------------
    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        if request.kind != PRODUCT:
            return []  # it is fitted on product sessions only: it has nothing to say about tools
        recent = request.context.recent_items if request.context else ()
        codes = [self.index[i] for i in recent if i in self.index]
        scores = self.item_scores(codes)
        ranked = ranked_codes(scores, request.k + len(request.exclude))
        ranked += [c for c in self.popular if c not in set(ranked)]  # cold start and fill-in
        out: list[ScoredItem] = []
        for rank, code in enumerate(ranked):
            item = self.items[code]
            if item in request.exclude:
                continue
            score = float(scores[code]) if scores[code] > 0 else 0.0
            out.append(ScoredItem(item, score if score else -float(rank)))
            if len(out) == request.k:
                break
        return out

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        """Items that the sessions with `item_id` vote for (the item itself left out)."""
        if item_id not in self.index:
            return []
        code = self.index[item_id]
        scores = self.item_scores([code])
        scores[code] = 0.0
        top = np.argsort(-scores, kind="stable")[:k]
        return [ScoredItem(self.items[c], float(scores[c])) for c in top if scores[c] > 0]

    # --- persistence ----------------------------------------------------------------------------
    _ARRAYS = ("session_ptr", "session_items", "item_ptr", "item_sessions", "item_idf", "popular")

    def save(self, folder: Path) -> Path:
        """session_knn.json (settings, item ids), index.npz (the session and item posting lists), the manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "index.npz", **{name: getattr(self, name) for name in self._ARRAYS})
        settings = {"k": self.k, "sample_size": self.sample_size, "weighting": self.weighting, "idf": self.idf,
                    "max_len": self.max_len}
        (folder / "session_knn.json").write_text(
            json.dumps({"settings": settings, "items": self.items, "n_sessions": self.n_sessions})
        )
        write_manifest(folder, self.name, self.version)
        return folder

    @classmethod
    def load(cls, folder: Path) -> SessionKNNRecommender:
        state = json.loads((folder / "session_knn.json").read_text())
        model = cls(**state["settings"])
        model.items = list(state["items"])
        model.index = {item: i for i, item in enumerate(model.items)}
        model.n_sessions = int(state["n_sessions"])
        with np.load(folder / "index.npz") as arrays:
            for name in cls._ARRAYS:
                setattr(model, name, arrays[name])
        return model
