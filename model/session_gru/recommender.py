"""The session GRU behind the `Recommender` interface: fit on an interactions frame, serve, save and load."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from model.bundle_paths import write_manifest
from model.datasets.srgnn import pad_sequences, session_prefixes
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from model.session_gru.network import NextItemModel, SessionModelConfig, build_model, make_scorer
from model.session_gru.training import train_next_item_model
from streamrec.events import PRODUCT


class SessionModelRecommender(Recommender):
    """Recommends the next item from `request.context.recent_items` (newest first) with the session model."""

    name = "session-gru"
    version = "1"

    def __init__(self, config: SessionModelConfig | None = None, **config_overrides) -> None:
        self.config = config or SessionModelConfig(n_items=1, **config_overrides)
        self.model: NextItemModel | None = None
        self.items: list[str] = []  # index i + 1 -> item id
        self.index: dict[str, int] = {}
        self.popular: np.ndarray = np.zeros(0, dtype=np.int64)  # item indices, most popular first (cold start)
        self._score: Callable | None = None

    # --- training -------------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame, progress: bool = False) -> SessionModelRecommender:
        """Train on product events grouped by `session_id` in `ts` order (every prefix predicts its next item)."""
        frame = interactions[interactions["item_id"].notna()]
        if "kind" in frame:
            frame = frame[frame["kind"] == PRODUCT]
        frame = frame.sort_values(["session_id", "ts"], kind="stable")
        self.items = sorted(frame["item_id"].astype(str).unique())
        self.index = {item: i + 1 for i, item in enumerate(self.items)}
        self.config = self.config.model_copy(update={"n_items": max(len(self.items), 1)})
        long_form = pd.DataFrame(
            {
                "session": frame["session_id"].to_numpy(),
                "pos": frame.groupby("session_id").cumcount().to_numpy(),
                "item": frame["item_id"].astype(str).map(self.index).to_numpy(),
            }
        )
        counts = np.bincount(long_form["item"].to_numpy(), minlength=self.config.n_items + 1)
        counts[0] = -1
        self.popular = np.argsort(-counts, kind="stable")[: min(1000, self.config.n_items)]
        self.model = build_model(self.config)
        train_next_item_model(self.model, session_prefixes(long_form, self.config.max_len), progress=progress)
        self._score = None
        return self

    @classmethod
    def from_trained(cls, model: NextItemModel, items: Sequence[str], popular: np.ndarray) -> SessionModelRecommender:
        """Wrap a model trained on integer ids (e.g. a benchmark); `items[i]` is the id of index i + 1."""
        recommender = cls(model.config)
        recommender.model = model
        recommender.items = list(items)
        recommender.index = {item: i + 1 for i, item in enumerate(recommender.items)}
        recommender.popular = np.asarray(popular)
        return recommender

    # --- serving --------------------------------------------------------------------------------
    def _encode_contexts(self, requests: Sequence[RecommendationRequest]) -> tuple[np.ndarray, np.ndarray]:
        sequences = []
        for request in requests:
            recent = request.context.recent_items if request.context else ()
            known = [self.index[i] for i in reversed(recent) if i in self.index]  # oldest first
            sequences.append(np.asarray(known, dtype=np.int32))
        return pad_sequences(sequences, self.config.max_len)

    def scores(self, requests: Sequence[RecommendationRequest]) -> np.ndarray:
        """(len(requests), n_items + 1) scores through the compiled serving function."""
        if self.model is None:
            raise RuntimeError("the session model is not trained or loaded")
        if self._score is None:
            self._score = make_scorer(self.model)
        items, lengths = self._encode_contexts(requests)
        width = max(int(lengths.max(initial=0)), 1)
        return self._score(items[:, :width], lengths).numpy()

    def recommend_batch(self, requests: Sequence[RecommendationRequest]) -> list[list[ScoredItem]]:
        if not requests:
            return []
        all_scores = self.scores(requests)
        _, lengths = self._encode_contexts(requests)
        return [
            self._top(scores, request) if length else self._popular(request)
            for scores, request, length in zip(all_scores, requests, lengths, strict=True)
        ]

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return self.recommend_batch([request])[0]

    def _top(self, scores: np.ndarray, request: RecommendationRequest) -> list[ScoredItem]:
        wanted = request.k + len(request.exclude)
        candidates = np.argpartition(-scores, min(wanted, len(scores) - 1))[: wanted + 1]
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
        out = []
        for index in candidates:
            if index == 0 or self.items[index - 1] in request.exclude:
                continue
            out.append(ScoredItem(self.items[index - 1], float(scores[index])))
            if len(out) == request.k:
                break
        return out

    def _popular(self, request: RecommendationRequest) -> list[ScoredItem]:
        """Cold start (no known item in the session): the most popular items, scored by rank."""
        out = []
        for rank, index in enumerate(self.popular):
            item = self.items[index - 1]
            if item not in request.exclude:
                out.append(ScoredItem(item, 1.0 / (rank + 1)))
                if len(out) == request.k:
                    break
        return out

    def similar_items(self, item_id: str, k: int, kind: str = PRODUCT) -> list[ScoredItem]:
        """Nearest items by cosine of the (tied) item embeddings."""
        if self.model is None or item_id not in self.index:
            return []
        table = np.asarray(self.model.item_embedding.embeddings)
        table = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
        sims = table @ table[self.index[item_id]]
        sims[0] = -np.inf
        sims[self.index[item_id]] = -np.inf
        best = np.argsort(-sims, kind="stable")[:k]
        return [ScoredItem(self.items[i - 1], float(sims[i])) for i in best]

    # --- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """model.weights.h5 + vocabulary.json + config.json, then the manifest, so `load` rebuilds what was trained."""
        if self.model is None:
            raise RuntimeError("nothing to save: the session model is not trained")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(directory / "model.weights.h5")
        (directory / "vocabulary.json").write_text(
            json.dumps({"items": self.items, "popular": [int(i) for i in self.popular]})
        )
        (directory / "config.json").write_text(self.config.model_dump_json(indent=2))
        write_manifest(directory, self.name, self.version)
        return directory

    @classmethod
    def load(cls, directory: Path) -> SessionModelRecommender:
        directory = Path(directory)
        config = SessionModelConfig.model_validate_json((directory / "config.json").read_text())
        vocabulary = json.loads((directory / "vocabulary.json").read_text())
        model = build_model(config)
        model.load_weights(directory / "model.weights.h5")
        return cls.from_trained(model, vocabulary["items"], np.asarray(vocabulary["popular"], dtype=np.int64))
