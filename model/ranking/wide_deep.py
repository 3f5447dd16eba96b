"""The wide & deep ranker: a linear (wide) part over features and per-item/category biases, plus an MLP (deep)
over user, item and category embeddings and the same features; the two logits add up."""

from __future__ import annotations

import keras

from model.ranking.features import RANKER_DENSE_FEATURES, RankerConfig
from model.two_tower.features import FeatureSpec


def build_ranker(spec: FeatureSpec, config: RankerConfig) -> keras.Model:
    """Outputs the conversion logit (apply a sigmoid for a probability)."""
    keras.utils.set_random_seed(config.seed)
    l2 = keras.regularizers.L2(config.l2) if config.l2 else None
    user = keras.Input((), dtype="int32", name="user")
    item = keras.Input((), dtype="int32", name="item")
    category = keras.Input((), dtype="int32", name="category")
    dense = keras.Input((len(RANKER_DENSE_FEATURES),), dtype="float32", name="dense")
    # Per-feature standardisation; its mean and variance are set by `adapt` on the training rows and saved
    # with the weights.
    normalized = keras.layers.Normalization(name="dense_normalize")(dense)

    wide = keras.layers.Add(name="wide")([
        keras.layers.Dense(1, name="wide_linear")(dense),
        keras.layers.Embedding(len(spec.items), 1, embeddings_initializer="zeros", embeddings_regularizer=l2,
                               name="item_bias")(item),
        keras.layers.Embedding(len(spec.categories), 1, embeddings_initializer="zeros", name="category_bias")(category),
    ])
    deep = keras.layers.Concatenate()([
        keras.layers.Embedding(len(spec.users), config.user_dim, embeddings_regularizer=l2,
                               name="ranker_user_embedding")(user),
        keras.layers.Embedding(len(spec.items), config.item_dim, embeddings_regularizer=l2,
                               name="ranker_item_embedding")(item),
        keras.layers.Embedding(len(spec.categories), config.category_dim, embeddings_regularizer=l2,
                               name="ranker_category_embedding")(category),
        normalized,
    ])
    for i, units in enumerate(config.hidden_units):
        deep = keras.layers.Dense(units, activation="relu", name=f"deep_{i}")(deep)
        deep = keras.layers.Dropout(config.dropout, name=f"deep_dropout_{i}")(deep)
    deep = keras.layers.Dense(1, name="deep_out")(deep)
    logit = keras.layers.Flatten()(keras.layers.Add(name="wide_and_deep")([wide, deep]))
    logit = keras.layers.Reshape((), name="logit")(logit)
    return keras.Model({"user": user, "item": item, "category": category, "dense": dense}, logit, name="ranker")
