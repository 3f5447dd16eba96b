"""Collaborative filtering for returning users: implicit's ALS (Hu, Koren & Volinsky 2008) on the user x item
matrix of the training frame, per kind, filled up by popularity.

The `implicit` package does the factorisation (conjugate-gradient ALS in C++/OpenMP, the practitioner's default);
this module only builds its confidence matrix (event-weighted counts, as the popularity baseline weighs events)
and answers requests. A known user with no session items is scored with the factors learned for them; any other
request with items (this session's, else the user's recent ones) gets a user vector recomputed from those items
by one least-squares step, so a user unseen in training still gets collaborative candidates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from model.baselines.popularity import PopularityRecommender
from model.baselines.session_cooccurrence import EVENT_WEIGHT
from model.bundle_paths import write_manifest
from model.recommender import RankedColumns, RecommendationRequest, Recommender, ScoredItem
from model.two_tower.examples import query_history
from streamrec.events import PRODUCT


class _KindFactors:
    """One kind's fitted ALS with its vocabularies and each training user's item row."""

    def __init__(self, model: AlternatingLeastSquares, users: pd.Index, items: pd.Index, matrix: csr_matrix) -> None:
        self.model = model
        self.users = {str(u): i for i, u in enumerate(users)}
        self.items: list[str] = [str(item) for item in items]  # a list: a pandas Index read per item was 9 % of a
        # serving worker's CPU (py-spy)
        self.item_index = {item: i for i, item in enumerate(self.items)}
        self.matrix = matrix  # users x items confidences


class AlsRecommender(Recommender):
    name = "als"
    version = "1"

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0, iterations: int = 15,
                 seed: int = 7, threads: int = 0, history_cap: int = 50) -> None:
        """Defaults are implicit's own (factors 100, regularization 0.01, alpha 1.0, 15 iterations)."""
        self.params = {"factors": factors, "regularization": regularization, "alpha": alpha,
                       "iterations": iterations, "random_state": seed, "num_threads": threads}
        self.history_cap = history_cap
        self.kinds: dict[str, _KindFactors] = {}
        self.popularity = PopularityRecommender()

    def fit(self, interactions: pd.DataFrame) -> AlsRecommender:
        frame = interactions.dropna(subset=["item_id"])
        weights = frame["event_type"].map(EVENT_WEIGHT).fillna(1.0).astype(np.float32)
        self.kinds = {}
        for kind, group in frame.assign(weight=weights).groupby("kind"):
            user_codes, users = pd.factorize(group["user_id"].astype(str))
            item_codes, items = pd.factorize(group["item_id"].astype(str))
            matrix = csr_matrix((group["weight"].to_numpy(), (user_codes, item_codes)),
                                shape=(len(users), len(items)), dtype=np.float32)
            matrix.sum_duplicates()
            with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS's would fight them
                model = AlternatingLeastSquares(**self.params)
                model.fit(matrix, show_progress=False)
            # Serving solves one user per request: implicit's OpenMP over every core costs more than the solve
            # (bench sources on YooChoose-100k: p99 36 ms with all threads, 0.7 ms with one), as FAISS serves.
            model.num_threads = 1
            self.kinds[str(kind)] = _KindFactors(model, pd.Index(users), pd.Index(items), matrix)
        self.popularity.fit(interactions)
        return self

    def _seeds(self, request: RecommendationRequest) -> tuple[str, ...]:
        seeds = (request.trigger_item,) if request.trigger_item else ()
        if request.kind == PRODUCT and request.context is not None:
            seeds += query_history(request.context)
        return tuple(dict.fromkeys(seeds))[: self.history_cap]

    def _user_vectors(self, fitted: _KindFactors, requests: Sequence[RecommendationRequest],
                      seeds: Sequence[tuple[str, ...]]) -> list[np.ndarray | None]:
        """Each request's user vector: a known user with no seeds has their learned factors; any other request with
        items (its seeds, plus a known user's training row) is solved for, all of them in one `recalculate_user`
        (implicit recomputes YᵀY on every call: once per batch, not once per trigger); None without any item."""
        vectors: list[np.ndarray | None] = [None] * len(requests)
        solved: list[int] = []
        indptr, indices, data = [0], [], []  # the solved requests' confidence rows, as one CSR matrix
        matrix = fitted.matrix
        for j, (request, seed) in enumerate(zip(requests, seeds, strict=True)):
            user = fitted.users.get(request.user_id)
            if not seed and user is not None:
                vectors[j] = np.asarray(fitted.model.user_factors[user])
                continue
            confidence = {fitted.item_index[i]: 1.0 for i in seed if i in fitted.item_index}
            if user is not None:  # a returning user: their training items and this session's together
                start, end = matrix.indptr[user], matrix.indptr[user + 1]
                for col, value in zip(matrix.indices[start:end].tolist(), matrix.data[start:end].tolist(),
                                      strict=True):
                    confidence[col] = confidence.get(col, 0.0) + value
            if confidence:
                cols = sorted(confidence)
                indices += cols
                data += [confidence[c] for c in cols]
                indptr.append(len(indices))
                solved.append(j)
        if solved:
            rows = csr_matrix((np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr)),
                              shape=(len(solved), len(fitted.items)))
            factors = np.asarray(fitted.model.recalculate_user(np.arange(len(solved)), rows))
            for j, vector in zip(solved, factors.reshape(len(solved), -1), strict=True):
                vectors[j] = vector
        return vectors

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        return [answer.scored() for answer in self.recommend_columns(requests)]

    def recommend_columns(self, requests: Sequence[RecommendationRequest]) -> list[RankedColumns]:
        seeds = [self._seeds(r) for r in requests]
        vectors: list[np.ndarray | None] = [None] * len(requests)
        for kind, fitted in self.kinds.items():
            mine = [j for j, r in enumerate(requests) if r.kind == kind]
            if mine:
                found = self._user_vectors(fitted, [requests[j] for j in mine], [seeds[j] for j in mine])
                for j, vector in zip(mine, found, strict=True):
                    vectors[j] = vector
        return [self._ranked(r, seed, vector) for r, seed, vector in zip(requests, seeds, vectors, strict=True)]

    def _ranked(self, request: RecommendationRequest, seeds: tuple[str, ...],
                vector: np.ndarray | None) -> RankedColumns:
        items: list[str] = []
        values: list[float] = []
        fitted = self.kinds.get(request.kind)
        if fitted is not None and vector is not None and request.k > 0:
            scores = np.asarray(fitted.model.item_factors) @ vector
            blocked = set(request.exclude) | set(seeds)
            take = min(len(scores), request.k + len(blocked))
            top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
            order = top[np.argsort(-scores[top], kind="stable")].tolist()
            names = fitted.items
            if blocked:
                order = [i for i in order if names[i] not in blocked]
            order = order[: request.k]
            items = [names[i] for i in order]
            values = scores[order].tolist()
        if len(items) < request.k:
            fill = self._fill(request, items, values, seeds)
            items, values = items + fill.items, values + list(fill.scores)
        return RankedColumns(items, values)

    def _fill(self, request: RecommendationRequest, items: list[str], values: list[float],
              seeds: tuple[str, ...]) -> RankedColumns:
        """Popularity below every ALS score, for users and kinds ALS knows nothing about."""
        chosen = set(request.exclude) | set(seeds) | set(items)
        fill = RecommendationRequest(request.user_id, request.k - len(items), request.kind, exclude=frozenset(chosen))
        floor = min(values, default=0.0)
        popular = self.popularity.recommend(fill)
        top = popular[0].score if popular else 1.0
        return RankedColumns([p.item_id for p in popular], [floor - 1.0 + p.score / top / 2 for p in popular])

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        fitted = self.kinds.get(kind)
        if fitted is None or item_id not in fitted.item_index:
            return []
        ids, scores = fitted.model.similar_items(fitted.item_index[item_id], N=k + 1)
        return [ScoredItem(fitted.items[i], float(s)) for i, s in zip(ids, scores, strict=True)
                if fitted.items[i] != item_id][:k]

    # --- saved as a model version the worker serves ----------------------------------------------
    def metadata(self) -> dict[str, object]:
        """What als.json holds: the settings the factors were fitted with, the history cap, the kinds."""
        return {"params": self.params, "history_cap": self.history_cap, "kinds": list(self.kinds)}

    def save(self, folder: Path) -> Path:
        """Per kind: factors (npz, with each training user's item row) and vocabularies; popularity; manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        for kind, fitted in self.kinds.items():
            np.savez(folder / f"als-{kind}.npz", user_factors=np.asarray(fitted.model.user_factors),
                     item_factors=np.asarray(fitted.model.item_factors), data=fitted.matrix.data,
                     indices=fitted.matrix.indices, indptr=fitted.matrix.indptr)
            vocab = {"users": list(fitted.users), "items": list(fitted.items)}
            (folder / f"als-{kind}.json").write_text(json.dumps(vocab))
        (folder / "als.json").write_text(json.dumps(self.metadata()))
        self.popularity.save(folder / "popularity")
        write_manifest(folder, self.name, self.version)
        return folder

    @classmethod
    def load(cls, folder: Path) -> AlsRecommender:
        meta = json.loads((folder / "als.json").read_text())
        model = cls()  # a subclass (als-tuned) rebuilds as itself; the fitted settings are the saved ones
        model.params, model.history_cap = dict(meta["params"]), meta["history_cap"]
        for kind in meta["kinds"]:
            arrays = np.load(folder / f"als-{kind}.npz")
            vocab = json.loads((folder / f"als-{kind}.json").read_text())
            with threadpool_limits(1, "blas"):
                als = AlternatingLeastSquares(**model.params)
            als.num_threads = 1  # serving: one user per request (see fit)
            als.user_factors, als.item_factors = arrays["user_factors"], arrays["item_factors"]
            matrix = csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                shape=(len(vocab["users"]), len(vocab["items"])))
            model.kinds[kind] = _KindFactors(als, pd.Index(vocab["users"]), pd.Index(vocab["items"]), matrix)
        model.popularity = PopularityRecommender.load(folder / "popularity")
        return model
