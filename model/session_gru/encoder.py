"""A Keras layer that turns a session's item sequence into one query vector (NARM-style GRU + attention).

Inputs are explicit so any tower can reuse it: a right-padded item-id matrix (oldest first, 0 = padding)
and the true lengths. The item embedding is passed in, so the same table can score the catalogue (tied).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="streamrec")
class SessionEncoder(keras.layers.Layer):
    """GRU over the session; attention of every step against the last state; both mixed into `output_dim`.

    NARM (Li et al., CIKM 2017): the last GRU state says what the user wants now, the attention-weighted
    sum of all states what the session is about. Right padding leaves the states before it unchanged, so
    the GRU needs no mask and the last state is gathered at `lengths - 1`.
    """

    def __init__(
        self,
        item_embedding: keras.layers.Embedding,
        hidden_units: int = 100,
        output_dim: int = 100,
        embedding_dropout: float = 0.25,
        state_dropout: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.item_embedding = item_embedding
        self.hidden_units = hidden_units
        self.output_dim = output_dim
        self.embedding_dropout = keras.layers.Dropout(embedding_dropout)
        self.state_dropout = keras.layers.Dropout(state_dropout)
        self.gru = keras.layers.GRU(hidden_units, return_sequences=True, name="gru")
        self.attend_last = keras.layers.Dense(hidden_units, use_bias=False, name="attend_last")
        self.attend_steps = keras.layers.Dense(hidden_units, use_bias=False, name="attend_steps")
        self.attention_score = keras.layers.Dense(1, use_bias=False, name="attention_score")
        self.project = keras.layers.Dense(output_dim, use_bias=False, name="project")
        self._dropout_rates = (embedding_dropout, state_dropout)

    def build(self, input_shape) -> None:  # sub-layers are built on first call
        super().build(input_shape)

    def call(self, item_ids, lengths, training: bool = False):
        """(batch, steps) int item ids + (batch,) lengths -> (batch, output_dim) session vectors."""
        item_ids = ops.cast(item_ids, "int32")
        lengths = ops.maximum(ops.cast(lengths, "int32"), 1)  # an empty session reads its padding step
        steps = ops.shape(item_ids)[1]
        mask = ops.cast(ops.arange(steps)[None, :] < lengths[:, None], "float32")  # (batch, steps)
        embedded = self.embedding_dropout(self.item_embedding(item_ids), training=training)
        states = self.gru(embedded, training=training)  # (batch, steps, hidden)
        last_index = ops.expand_dims(ops.expand_dims(lengths - 1, 1), 2)  # (batch, 1, 1)
        last_state = ops.squeeze(ops.take_along_axis(states, last_index, axis=1), 1)
        weights = self.attention_score(
            ops.sigmoid(ops.expand_dims(self.attend_last(last_state), 1) + self.attend_steps(states))
        )  # (batch, steps, 1); NARM uses the raw sigmoid-gated weights, not a softmax
        context = ops.sum(weights * states * ops.expand_dims(mask, 2), axis=1)
        mixed = self.state_dropout(ops.concatenate([last_state, context], axis=1), training=training)
        return self.project(mixed)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "item_embedding": keras.saving.serialize_keras_object(self.item_embedding),
                "hidden_units": self.hidden_units,
                "output_dim": self.output_dim,
                "embedding_dropout": self._dropout_rates[0],
                "state_dropout": self._dropout_rates[1],
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> SessionEncoder:
        config = dict(config)
        config["item_embedding"] = keras.saving.deserialize_keras_object(config["item_embedding"])
        return cls(**config)
