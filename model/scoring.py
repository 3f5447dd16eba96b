"""The serving path's model calls: `tf.function`s with fixed input signatures, no `model.predict`.

`model.predict` builds a dataset and a loop per call (~37 ms here); a traced function with a
`None` batch dimension is traced once and then costs well under a millisecond per batch.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from model.ranking.features import RANKER_DENSE_FEATURES
from model.two_tower.features import DENSE_FEATURES, FeatureSpec


class QueryEncoder:
    """Query-tower embeddings for a batch of query inputs (`model.two_tower.examples.query_inputs`)."""

    def __init__(self, query_model: keras.Model, spec: FeatureSpec) -> None:
        signature = [
            tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, spec.history_length), tf.int32),
            tf.TensorSpec((None, len(spec.categories)), tf.float32),
            tf.TensorSpec((None, len(DENSE_FEATURES)), tf.float32),
        ]

        @tf.function(input_signature=signature, autograph=False)
        def encode(user, history, categories, dense):
            return query_model({"user": user, "history": history, "categories": categories, "dense": dense},
                               training=False)

        self._encode = encode

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._encode(inputs["user"], inputs["history"], inputs["categories"], inputs["dense"]).numpy()


class RankerScorer:
    """Ranker logits for a batch of (query, candidate) rows (`model.ranking.features.ranker_inputs`)."""

    def __init__(self, ranker: keras.Model) -> None:
        signature = [tf.TensorSpec((None,), tf.int32)] * 3 + [tf.TensorSpec((None, len(RANKER_DENSE_FEATURES)),
                                                                            tf.float32)]

        @tf.function(input_signature=signature, autograph=False)
        def score(user, item, category, dense):
            return ranker({"user": user, "item": item, "category": category, "dense": dense}, training=False)

        self._score = score

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._score(inputs["user"], inputs["item"], inputs["category"], inputs["dense"]).numpy()
