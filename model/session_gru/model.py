"""Next-item model on the session encoder (full softmax over the catalogue) and its `Recommender`.

Scores are the dot product of the session vector with the same item embeddings the encoder reads (tied).
With `normalize`, both sides are L2-normalised and scaled (NISER, Gupta et al. 2019): it curbs the
popularity bias that raw dot products pick up on long-tailed catalogues like Diginetica's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import ops
from pydantic import BaseModel, Field

from model.datasets.srgnn import PrefixSamples, pad_sequences, session_prefixes
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from model.session_gru.encoder import SessionEncoder
from streamrec.events import PRODUCT

PADDING_SCORE = -1e9  # item 0 is padding and is never recommended


class SessionModelConfig(BaseModel):
    """Everything needed to rebuild and retrain the model; saved next to the weights."""

    n_items: int = Field(gt=0, description="largest item index; the vocabulary is 0 (padding) .. n_items")
    embedding_dim: int = 100
    hidden_units: int = 100
    embedding_dropout: float = 0.25
    state_dropout: float = 0.5
    normalize: bool = True
    scale: float = 12.0  # softmax temperature for normalised scores (NISER uses 12-16)
    max_len: int = 20  # the most recent items a prefix keeps
    batch_size: int = 512
    epochs: int = 7
    learning_rate: float = 1e-3
    lr_decay: float = 0.7  # learning rate is multiplied by this after every epoch
    seed: int = 7


@keras.saving.register_keras_serializable(package="streamrec")
class NextItemModel(keras.Model):
    """(item ids, lengths) -> scores for every item index (0 = padding, masked)."""

    def __init__(self, config: SessionModelConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.item_embedding = keras.layers.Embedding(
            config.n_items + 1,
            config.embedding_dim,
            embeddings_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=config.seed),
            name="item_embedding",
        )
        self.encoder = SessionEncoder(
            self.item_embedding,
            hidden_units=config.hidden_units,
            output_dim=config.embedding_dim,
            embedding_dropout=config.embedding_dropout,
            state_dropout=config.state_dropout,
            name="session_encoder",
        )
        self.padding_penalty = ops.convert_to_tensor(np.r_[PADDING_SCORE, np.zeros(config.n_items)].astype("float32"))

    def item_vectors(self):
        table = self.item_embedding.embeddings
        return ops.normalize(table, axis=1) if self.config.normalize else table

    def session_vectors(self, item_ids, lengths, training: bool = False):
        vectors = self.encoder(item_ids, lengths, training=training)
        return ops.normalize(vectors, axis=1) * self.config.scale if self.config.normalize else vectors

    def call(self, inputs, training: bool = False):
        item_ids, lengths = inputs
        scores = ops.matmul(self.session_vectors(item_ids, lengths, training), ops.transpose(self.item_vectors()))
        return scores + self.padding_penalty

    def get_config(self) -> dict:
        return {"config": self.config.model_dump(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> NextItemModel:
        return cls(SessionModelConfig(**config["config"]), name=config.get("name"))


def build_model(config: SessionModelConfig) -> NextItemModel:
    """A built model (weights created by one call on a dummy batch)."""
    keras.utils.set_random_seed(config.seed)
    model = NextItemModel(config, name="next_item")
    model((np.zeros((1, 1), np.int32), np.ones((1,), np.int32)))
    return model


def length_bucketed_batches(samples: PrefixSamples, batch_size: int, rng: np.random.Generator) -> Iterator[tuple]:
    """Shuffled batches of similar length, trimmed to their longest prefix (GRU steps scale with length)."""
    order = np.lexsort((rng.random(len(samples)), samples.lengths))  # by length, random within a length
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for b in rng.permutation(len(batches)):
        rows = batches[b]
        width = int(samples.lengths[rows].max())
        yield samples.items[rows, :width], samples.lengths[rows], samples.targets[rows]


def make_train_step(model: NextItemModel, optimizer: keras.optimizers.Optimizer) -> Callable:
    """A compiled step: full softmax cross-entropy over the catalogue, one Adam update; returns the loss."""

    @tf.function(
        input_signature=[
            tf.TensorSpec((None, None), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
        ],
        reduce_retracing=True,
    )
    def step(items, lengths, targets):
        with tf.GradientTape() as tape:
            logits = model((items, lengths), training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=False))
        return loss

    return step


def train_next_item_model(
    model: NextItemModel,
    samples: PrefixSamples,
    epochs: int | None = None,
    on_epoch_end: Callable[[int, dict], bool | None] | None = None,
    progress: bool = True,
    max_batches: int | None = None,
) -> list[dict]:
    """Train in place; returns one dict per epoch (loss, seconds).

    `on_epoch_end` may evaluate and checkpoint; returning True stops training (early stopping).
    """
    from tqdm.auto import tqdm

    config = model.config
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    step = make_train_step(model, optimizer)
    rng = np.random.default_rng(config.seed)
    history = []
    n_batches = math.ceil(len(samples) / config.batch_size)
    if max_batches:
        n_batches = min(n_batches, max_batches)
    for epoch in range(epochs if epochs is not None else config.epochs):
        optimizer.learning_rate.assign(config.learning_rate * config.lr_decay**epoch)
        started, total, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}", disable=not progress, mininterval=5)
        for i, (items, lengths, targets) in enumerate(length_bucketed_batches(samples, config.batch_size, rng)):
            if i >= n_batches:
                break
            total += float(step(items, lengths, targets)) * len(targets)
            seen += len(targets)
            bar.update(1)
            if i % 50 == 0:
                bar.set_postfix(loss=f"{total / seen:.4f}")
        bar.close()
        record = {"epoch": epoch + 1, "loss": total / max(seen, 1), "seconds": time.perf_counter() - started}
        history.append(record)
        if on_epoch_end is not None and on_epoch_end(epoch + 1, record):
            break
    return history


def make_scorer(model: NextItemModel) -> Callable:
    """The serving path: a `tf.function` with a fixed signature (no `model.predict`), inference mode.

    The (normalised, transposed) item table is a snapshot taken here, not recomputed per call: normalising
    43k x 100 floats costs more than the whole matmul. Make a new scorer after the weights change.
    """
    item_table = tf.constant(np.asarray(ops.transpose(model.item_vectors())))
    penalty = tf.constant(np.asarray(model.padding_penalty))

    @tf.function(
        input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)],
        reduce_retracing=True,
    )
    def score(items, lengths):
        return tf.matmul(model.session_vectors(items, lengths, training=False), item_table) + penalty

    return score


def make_top_k(model: NextItemModel, k: int) -> Callable:
    """Top-k item indices per prefix, ranking the full catalogue inside the graph."""
    scorer = make_scorer(model)

    @tf.function(
        input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32)],
        reduce_retracing=True,
    )
    def top_k(items, lengths):
        return tf.math.top_k(scorer(items, lengths), k=k).indices

    return top_k


def rank_top_k(model: NextItemModel, samples: PrefixSamples, k: int = 20, batch_size: int = 1024) -> np.ndarray:
    """(n, k) top item indices for every sample, best first."""
    top_k = make_top_k(model, k)
    out = np.zeros((len(samples), k), dtype=np.int32)
    for start in range(0, len(samples), batch_size):
        rows = slice(start, start + batch_size)
        width = max(int(samples.lengths[rows].max()), 1)
        out[rows] = top_k(samples.items[rows, :width], samples.lengths[rows]).numpy()
    return out


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
        """config.json + vocabulary.json + model.weights.h5, so `load` rebuilds exactly what was trained."""
        if self.model is None:
            raise RuntimeError("nothing to save: the session model is not trained")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(self.config.model_dump_json(indent=2))
        (directory / "vocabulary.json").write_text(
            json.dumps({"items": self.items, "popular": [int(i) for i in self.popular]})
        )
        self.model.save_weights(directory / "model.weights.h5")
        return directory

    @classmethod
    def load(cls, directory: Path) -> SessionModelRecommender:
        directory = Path(directory)
        config = SessionModelConfig.model_validate_json((directory / "config.json").read_text())
        vocabulary = json.loads((directory / "vocabulary.json").read_text())
        model = build_model(config)
        model.load_weights(directory / "model.weights.h5")
        return cls.from_trained(model, vocabulary["items"], np.asarray(vocabulary["popular"], dtype=np.int64))
