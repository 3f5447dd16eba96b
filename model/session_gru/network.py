"""The next-item network on the session encoder (full softmax over the catalogue) and its compiled scoring.

Scores are the dot product of the session vector with the same item embeddings the encoder reads (tied).
With `normalize`, both sides are L2-normalised and scaled (NISER, Gupta et al. 2019): it curbs the
popularity bias that raw dot products pick up on long-tailed catalogues like Diginetica's.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from pydantic import BaseModel, Field

from model.datasets.srgnn import PrefixSamples
from model.session_gru.encoder import SessionEncoder

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
