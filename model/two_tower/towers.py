"""The query tower and the item tower (Keras 3 functional models sharing the item-id embedding).

Both towers end L2-normalised, so a FAISS inner-product index ranks by cosine and the temperature of
the retrieval task sets the softmax sharpness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import keras
from pydantic import BaseModel, Field

from model.session_gru.encoder import SessionEncoder
from model.two_tower.features import DENSE_FEATURES, FeatureSpec


class TwoTowerConfig(BaseModel):
    """Hyperparameters of the two-tower model and its training (saved in the bundle)."""

    embedding_dim: int = Field(32, ge=4)
    hidden_units: int = Field(64, ge=4)
    history_length: int = Field(10, ge=1)
    history_encoder: Literal["mean", "gru"] = Field(
        "mean", description="How the query tower reads the recent items: the mean of their embeddings, or the "
        "session GRU + attention encoder (NARM) over them in order")
    encoder_units: int = Field(64, ge=4, description="GRU units of the gru history encoder")
    temperature: float = Field(0.05, gt=0)
    logq_correction: bool = True
    item_id_dropout: float = Field(0.1, ge=0, le=1, description="Share of positives trained with the id hidden")
    user_id_dropout: float = Field(0.0, ge=0, le=1, description="Share of queries trained with the user id hidden")
    batch_size: int = Field(512, ge=8)
    epochs: int = Field(20, ge=1)
    patience: int = Field(2, ge=1, description="Epochs without validation improvement before stopping")
    learning_rate: float = Field(3e-3, gt=0)
    l2: float = Field(1e-6, ge=0)
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    validation: Literal["time-slice", "per-user-holdout"] = Field(
        "time-slice", description="time-slice: the latest `validation_fraction` of examples; per-user-holdout: "
        "held-out purchases of sampled users (model.two_tower.holdout), then a refit on all data")
    holdout_user_fraction: float = Field(0.15, gt=0, le=1, description="per-user-holdout: share of users sampled")
    holdout_item_fraction: float = Field(0.2, gt=0, lt=1, description="per-user-holdout: share of their items held")
    validation_k: int = Field(100, ge=1)
    validation_excludes_history: bool = Field(
        False, description="Validate as protocols that never recommend what the user had before (e.g. ASOS)")
    seed: int = 7


@dataclass
class Towers:
    query: keras.Model
    item: keras.Model


def _embedding(n: int, dim: int, l2: float, name: str) -> keras.layers.Embedding:
    return keras.layers.Embedding(n, dim, embeddings_regularizer=keras.regularizers.L2(l2) if l2 else None,
                                  embeddings_initializer=keras.initializers.RandomNormal(stddev=0.05), name=name)


def _read_history(history, item_embedding: keras.layers.Embedding, config: TwoTowerConfig):
    """The recent items (newest first, known ones only, 0-padded on the right) as one vector."""
    if config.history_encoder == "gru":
        # The encoder reads oldest first: reverse each row's filled part, leave its padding where it is.
        lengths = keras.ops.sum(keras.ops.cast(keras.ops.greater(history, 0), "int32"), axis=1)
        steps = keras.ops.arange(keras.ops.shape(history)[1])[None, :]
        filled = keras.ops.less(steps, lengths[:, None])
        flipped = keras.ops.where(filled, lengths[:, None] - 1 - steps, steps)
        oldest_first = keras.ops.take_along_axis(history, flipped, axis=1)
        encoder = SessionEncoder(item_embedding, hidden_units=config.encoder_units, output_dim=config.embedding_dim,
                                 embedding_dropout=0.1, state_dropout=0.1, name="history_encoder")
        return encoder(oldest_first, lengths)
    # Mean of the recent items' id embeddings; index 0 (padding) is masked out.
    history_vectors = item_embedding(history)
    mask = keras.ops.expand_dims(keras.ops.cast(keras.ops.greater(history, 0), "float32"), -1)
    return keras.ops.sum(history_vectors * mask, axis=1) / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)


def build_towers(spec: FeatureSpec, config: TwoTowerConfig) -> Towers:
    """Query tower: user, recent items (their mean, or the session GRU over them), categories seen, session and
    time features.

    Item tower: id plus attributes (category, brand, price band).
    """
    keras.utils.set_random_seed(config.seed)
    dim = config.embedding_dim
    item_embedding = _embedding(len(spec.items), dim, config.l2, "item_id_embedding")

    # Item tower: the id embedding plus attribute embeddings, so an unknown id still has a meaningful vector.
    item = keras.Input((), dtype="int32", name="item")
    category = keras.Input((), dtype="int32", name="category")
    brand = keras.Input((), dtype="int32", name="brand")
    price_band = keras.Input((), dtype="int32", name="price_band")
    item_parts = [
        item_embedding(item),
        _embedding(len(spec.categories), dim, config.l2, "item_category_embedding")(category),
        _embedding(len(spec.brands), dim, config.l2, "item_brand_embedding")(brand),
        _embedding(spec.n_price_bands + 1, dim // 2, config.l2, "item_price_band_embedding")(price_band),
    ]
    x = keras.layers.Concatenate()(item_parts)
    x = keras.layers.Dense(config.hidden_units, activation="relu", name="item_hidden")(x)
    x = keras.layers.Dense(dim, name="item_out")(x)
    item_vector = keras.layers.UnitNormalization(name="item_normalize")(x)
    item_model = keras.Model({"item": item, "category": category, "brand": brand, "price_band": price_band},
                             item_vector, name="item_tower")

    user = keras.Input((), dtype="int32", name="user")
    history = keras.Input((spec.history_length,), dtype="int32", name="history")
    categories = keras.Input((len(spec.categories),), dtype="float32", name="categories")
    dense = keras.Input((len(DENSE_FEATURES),), dtype="float32", name="dense")
    pooled = _read_history(history, item_embedding, config)
    query_parts = [
        _embedding(len(spec.users), dim, config.l2, "user_embedding")(user),
        pooled,
        keras.layers.Dense(dim, use_bias=False, name="categories_seen")(categories),
        dense,
    ]
    q = keras.layers.Concatenate()(query_parts)
    q = keras.layers.Dense(config.hidden_units, activation="relu", name="query_hidden")(q)
    q = keras.layers.Dense(dim, name="query_out")(q)
    query_vector = keras.layers.UnitNormalization(name="query_normalize")(q)
    query_model = keras.Model({"user": user, "history": history, "categories": categories, "dense": dense},
                              query_vector, name="query_tower")
    return Towers(query_model, item_model)
