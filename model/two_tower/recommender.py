"""The model stack behind the `Recommender` interface: FAISS candidates from the two-tower, ranked by wide & deep.

Per batch of requests: one query-tower call, one FAISS search, one ranker call over all candidates.
Requests the models cannot answer go to a fallback: tool recommendations, and cold starts (a user
the model never saw with nothing known in the session) — in the worker that is the streaming
session co-occurrence + popularity baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from model.bundle import ModelBundle
from model.index.faiss_index import query_with_prior, serve_single_threaded, with_prior
from model.ranking.features import ranker_inputs
from model.recommender import RankedColumns, RecommendationRequest, Recommender, ScoredItem
from model.scoring import QueryEncoder, RankerScorer
from model.two_tower.examples import query_history, query_inputs
from model.two_tower.numpy_item import NumpyItemTower
from model.two_tower.numpy_query import NumpyQueryTower
from streamrec.events import PRODUCT, Event
from streamrec.session_store import SessionContext


class BundlePopularity(Recommender):
    """Most popular training items of a bundle: the fallback of last resort when nothing else is there."""

    name = "bundle-popularity"

    def __init__(self, bundle: ModelBundle) -> None:
        popularity = np.asarray(bundle.spec.item_log_popularity)
        order = np.argsort(-popularity[1:], kind="stable") + 1
        self.ranked = [(bundle.spec.items.tokens[i], float(popularity[i])) for i in order]

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        if request.kind != PRODUCT:
            return []
        out = [ScoredItem(i, s) for i, s in self.ranked[: request.k + len(request.exclude) + 1]
               if i not in request.exclude and i != request.trigger_item]
        return out[: request.k]


class TwoTowerRecommender(Recommender):
    name = "two-tower"

    def __init__(self, bundle: ModelBundle, fallback: Recommender | None = None, candidates: int = 200,
                 use_ranker: bool | None = None, blend: float | None = None, numpy_query: bool = True,
                 numpy_item: bool = True) -> None:
        self.bundle = bundle
        self.spec = bundle.spec
        self.version = bundle.version
        self.fallback = fallback or BundlePopularity(bundle)
        self.candidates = candidates  # FAISS candidates handed to the ranker per request
        serve_single_threaded()
        # The query tower's forward pass in NumPy (same vectors, a fraction of the tf.function's call overhead on
        # batches of a few requests); numpy_query=False serves the TensorFlow reference, which the tests compare.
        self.encode: Callable[[dict[str, np.ndarray]], np.ndarray] = (
            NumpyQueryTower(bundle.towers.query, bundle.config.two_tower) if numpy_query
            else QueryEncoder(bundle.towers.query, self.spec))
        # Likewise the item tower for items added while serving (an eager Keras call is ~11 ms per add, paid in the
        # poll loop by the batch carrying the item's first event); numpy_item=False calls the Keras tower.
        self.embed_items: Callable[[dict[str, np.ndarray]], np.ndarray] = (
            NumpyItemTower(bundle.towers.item) if numpy_item
            else lambda inputs: np.asarray(bundle.towers.item(inputs, training=False), dtype=np.float32))
        if use_ranker is None:  # the bundle's choice, made on its latest time slice at training
            use_ranker = bundle.config.serve_ranker
        self.rank = RankerScorer(bundle.ranker) if (use_ranker and bundle.ranker is not None) else None
        # Final score = ranker logit + blend * retrieval logit ((q.v + prior) / T).
        self.blend = bundle.config.ranker_blend if blend is None else blend
        self.temperature = bundle.config.two_tower.temperature
        base = "two-tower-gru" if bundle.config.two_tower.history_encoder == "gru" else "two-tower"
        self.name = f"{base}+ranker" if self.rank else base
        # Items added after training (attribute-based vectors): their index rows follow the vocabulary's.
        self.extra_items: list[str] = []
        self.index = bundle.index  # copied before the first item is added: the bundle stays as trained
        self._extra_index: dict[str, int] = {}
        # The additive popularity prior of each index row (the index's last column), to recover q.v for the ranker.
        log_q = np.asarray(self.spec.item_log_q, dtype=np.float32)
        self.prior = bundle.config.popularity_prior * log_q
        self._new_item_prior = bundle.config.popularity_prior * float(log_q[1:].min()) if len(log_q) > 1 else 0.0
        # Trace the model calls now, where the model loads, not in the first batch served (a stalled batch queues
        # every event behind it): the ranker's tf.function and, with numpy_query=False, the query tower's (440 ms
        # for the GRU's); the NumPy towers have nothing to trace.
        self._recommend_warm([RecommendationRequest("warm-up", 1, now_ms=0)], [None])

    def save(self, folder: Path) -> Path:
        """The bundle as trained (items added while serving are not saved), its manifest last."""
        folder.mkdir(parents=True, exist_ok=True)
        self.bundle.write(folder)
        return folder

    # --- who answers which request ----------------------------------------------------------------
    def _context_for(self, request: RecommendationRequest) -> SessionContext | None:
        """The request's session context, else one made of the user's training history (offline requests)."""
        if request.context is not None and query_history(request.context):
            return request.context
        history = self.bundle.user_history.get(request.user_id)
        if not history:
            return request.context
        base = request.context or SessionContext(user_id=request.user_id, session_id="")
        return SessionContext(**{**base.__dict__, "user_recent_items": tuple(history)})

    def query_vector(self, request: RecommendationRequest) -> np.ndarray:
        """The query tower's vector for a request (its context, else the user's training history)."""
        context = self._context_for(request)
        return self.encode(query_inputs(self.spec, [request.user_id], [context], [request.now_ms]))[0]

    def _is_warm(self, request: RecommendationRequest, context: SessionContext | None) -> bool:
        if request.kind != PRODUCT:
            return False
        known_user = self.spec.users.get(request.user_id) > 0
        known_items = any(self.spec.items.get(i) > 0 for i in query_history(context)) if context else False
        return known_user or known_items

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        return [answer.scored() for answer in self.recommend_columns(requests)]

    def recommend_columns(self, requests: Sequence[RecommendationRequest]) -> list[RankedColumns]:
        results: list[RankedColumns | None] = [None] * len(requests)
        warm, contexts, cold = [], [], []
        for position, request in enumerate(requests):
            context = self._context_for(request)
            if self._is_warm(request, context):
                warm.append(position)
                contexts.append(context)
            else:
                cold.append(position)
        if cold:
            answers = self.fallback.recommend_columns([requests[p] for p in cold])
            for position, answer in zip(cold, answers, strict=True):
                results[position] = answer
        if warm:
            answers = self._recommend_warm([requests[p] for p in warm], contexts)
            for position, answer in zip(warm, answers, strict=True):
                results[position] = answer
        return [r if r is not None else RankedColumns([], []) for r in results]

    # --- the model path ---------------------------------------------------------------------------
    def _item_id(self, row: int) -> str:
        return self._row_ids()[row]

    def _row_ids(self) -> np.ndarray:
        """Every index row's item id as one object array (rebuilt when items join), read by fancy indexing:
        a method call per searched row was a quarter of this source's serving time (py-spy)."""
        size = len(self.spec.items) + len(self.extra_items)
        if getattr(self, "_ids", None) is None or len(self._ids) != size:
            self._ids = np.array([*self.spec.items.tokens, *self.extra_items], dtype=object)
        return self._ids

    def _recommend_warm(self, requests: Sequence[RecommendationRequest],
                        contexts: Sequence[SessionContext | None]) -> list[RankedColumns]:
        users = [r.user_id for r in requests]
        now = np.array([r.now_ms for r in requests], dtype=np.int64)
        queries = self.encode(query_inputs(self.spec, users, contexts, now))
        depth = max(self.candidates, max(r.k for r in requests)) + max(len(r.exclude) for r in requests) + 2
        scores, rows = self.index.search(query_with_prior(queries), depth)

        kept: list[tuple[np.ndarray, np.ndarray]] = []
        ids = self._row_ids()
        for request, row_scores, row_ids in zip(requests, scores, rows, strict=True):
            blocked = {*request.exclude, request.trigger_item} if request.trigger_item else request.exclude
            wanted = row_ids > 0  # FAISS pads with -1; row 0 is the vocabulary's unknown item
            blocked_rows = [row for row in map(self._row_of, blocked) if row]
            if blocked_rows:  # an item has one row, so dropping its row drops it (no name read per searched row)
                wanted &= ~np.isin(row_ids, blocked_rows)
            keep = np.flatnonzero(wanted)[: max(self.candidates, request.k)]
            candidate_rows = row_ids[keep].astype(np.int64)
            kept.append((candidate_rows, row_scores[keep] - self.prior[candidate_rows]))  # q.v, as the ranker learnt
        if self.rank is None:
            final = [s + self.prior[r] for r, s in kept]
        else:
            logits = self.rank_candidates(requests, contexts, kept)
            final = [logit + self.blend * (s + self.prior[r]) / self.temperature
                     for logit, (r, s) in zip(logits, kept, strict=True)]
        out: list[RankedColumns] = []
        for request, (candidate_rows, _), final_scores in zip(requests, kept, final, strict=True):
            order = np.argsort(-final_scores, kind="stable")[: request.k]
            out.append(RankedColumns(ids[candidate_rows[order]].tolist(), final_scores[order].tolist()))
        return out

    def rank_candidates(self, requests, contexts, kept) -> list[np.ndarray]:
        vocab = len(self.spec.items)
        sizes = [len(rows) for rows, _ in kept]
        if sum(sizes) == 0:
            return [s for _, s in kept]
        rows = np.concatenate([r for r, _ in kept])
        item_index = np.where(rows < vocab, rows, 0)  # items added after training rank as "unknown item"
        inputs = ranker_inputs(
            self.spec,
            [r.user_id for r, n in zip(requests, sizes, strict=True) for _ in range(n)],
            item_index,
            [c for c, n in zip(contexts, sizes, strict=True) for _ in range(n)],
            np.concatenate([s for _, s in kept]),
            np.repeat([r.now_ms for r in requests], sizes),
        )
        logits = self.rank(inputs)
        return np.split(logits, np.cumsum(sizes)[:-1])

    # --- items, streaming -------------------------------------------------------------------------
    def _row_of(self, item_id: str) -> int | None:
        """The index row of an item (None or 0: not indexed)."""
        return self.spec.items.get(item_id) or self._extra_index.get(item_id)

    def item_vector(self, item_id: str) -> np.ndarray | None:
        row = self._row_of(item_id)
        return self.index.reconstruct(np.array([row]))[0][:-1] if row else None

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        vector = self.item_vector(item_id) if kind == PRODUCT else None
        if vector is None:
            return self.fallback.similar_items(item_id, k, kind)
        scores, rows = self.index.search(query_with_prior(vector[None, :], use_prior=False), k + 2)
        return [ScoredItem(self._item_id(int(r)), float(s)) for s, r in zip(scores[0], rows[0], strict=True)
                if r > 0 and self._item_id(int(r)) != item_id][:k]

    def add_items(self, item_ids: Sequence[str], categories: Sequence[str | None], brands: Sequence[str | None],
                  prices: Sequence[float | None]) -> int:
        """Index items the model never saw, embedded from their attributes (category, brand, price band)."""
        new = [j for j, i in enumerate(item_ids) if self.spec.items.get(i) == 0 and i not in self._extra_index]
        if not new:
            return 0
        inputs = self.spec.attribute_inputs([categories[j] for j in new], [brands[j] for j in new],
                                            [prices[j] for j in new])
        vectors = self.embed_items(inputs)
        if self.index is self.bundle.index:
            self.index = self.index.copy()
        rows = self.index.add(with_prior(vectors, np.full(len(vectors), self._new_item_prior, np.float32)))
        self.prior = np.concatenate([self.prior, np.full(len(rows), self._new_item_prior, np.float32)])
        for j, row in zip(new, rows, strict=True):
            self.extra_items.append(item_ids[j])
            self._extra_index[item_ids[j]] = int(row)
        return len(new)

    def observe(self, events: Sequence[Event], contexts: Sequence[SessionContext]) -> None:
        """The fallback keeps learning from the stream; products new to the model join the index by attributes."""
        self.fallback.observe(events, contexts)
        new: dict[str, Event] = {}
        for event in events:
            item = getattr(event, "item_id", None)
            known = self.spec.items.get(item) > 0 or item in self._extra_index if item else True
            if not known and getattr(event, "category", None):
                new[item] = event
        if new:
            chosen = list(new.values())
            self.add_items([e.item_id for e in chosen], [e.category for e in chosen],
                           [getattr(e, "brand", None) for e in chosen], [getattr(e, "price", None) for e in chosen])
