"""The trained query tower as a NumPy forward pass: the serving path's query encoder.

A batch of one or two requests is a few thousand multiply-adds; through a `tf.function` the call
overhead dominates (~2.2 ms per batch on the worker's 2 cores). The same arithmetic in NumPy, on the
Keras model's own weights (read by layer name, nothing retrained), costs a fraction of that.
`model.scoring.QueryEncoder` stays the reference: the unit tests hold both to the same vectors.
"""

from __future__ import annotations

import keras
import numpy as np

from model.two_tower.towers import TwoTowerConfig


def _weights(layer: keras.layers.Layer) -> list[np.ndarray]:
    return [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # The tanh form cannot overflow (1 / (1 + exp(-x)) warns at large |x| in float32) and stays float32.
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _dense(model: keras.Model, name: str, activation: str, use_bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """A Dense layer's kernel (and bias), after checking it computes what this module assumes."""
    layer = model.get_layer(name)
    config = layer.get_config()
    if config["activation"] != activation or config["use_bias"] != use_bias:
        raise ValueError(f"{name}: expected activation={activation}, use_bias={use_bias}; the layer has "
                         f"activation={config['activation']}, use_bias={config['use_bias']}")
    weights = _weights(layer)
    return weights[0], (weights[1] if use_bias else None)


class _SessionGRU:
    """`model.session_gru.encoder.SessionEncoder` at inference (dropout off): GRU + NARM attention + projection."""

    def __init__(self, encoder: keras.layers.Layer) -> None:
        gru = encoder.gru
        config = gru.get_config()
        expected = {"reset_after": True, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                    "go_backwards": False, "return_sequences": True}
        wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
        if wrong:
            raise ValueError(f"history_encoder GRU: this forward pass assumes {expected}; the layer has {wrong}")
        self.embeddings = _weights(encoder.item_embedding)[0]
        kernel, recurrent_kernel, bias = _weights(gru)
        self.units = recurrent_kernel.shape[0]
        # Columns of both kernels are the gates z, r, h in that order; with reset_after the bias has two rows,
        # one added to the input's projection and one to the state's (inside the reset gate for h).
        # sigmoid(a) = (1 + tanh(a / 2)) / 2: the z and r columns are halved here (exact in binary floating point),
        # so a step takes one tanh over both gates and no overflowing exp.
        gates = np.ones(3 * self.units, dtype=np.float32)
        gates[: 2 * self.units] = 0.5
        self.kernel, self.input_bias = kernel * gates, bias[0] * gates
        self.recurrent_kernel, self.recurrent_bias = recurrent_kernel * gates, bias[1] * gates
        self.attend_last = _weights(encoder.attend_last)[0]
        self.attend_steps = _weights(encoder.attend_steps)[0]
        self.attention_score = _weights(encoder.attention_score)[0][:, 0]
        self.project = _weights(encoder.project)[0]

    def __call__(self, history: np.ndarray) -> np.ndarray:
        """(batch, steps) item ids, newest first and right-padded with 0 -> (batch, output_dim)."""
        batch, steps = history.shape
        counts = np.count_nonzero(history > 0, axis=1)
        # As `model.two_tower.towers._read_history`: reverse each row's filled part (oldest first), padding stays.
        positions = np.arange(steps)[None, :]
        filled = positions < counts[:, None]
        oldest_first = np.take_along_axis(history, np.where(filled, counts[:, None] - 1 - positions, positions), 1)
        lengths = np.maximum(counts, 1)  # an empty history reads its padding step
        # States past a row's length are never read (the last state sits at length - 1, attention is masked):
        # the GRU runs only as far as the longest row of the batch.
        run = int(lengths.max())
        units = self.units
        # One 2-D matmul for every step's input projection (a stacked 3-D matmul is several times slower here).
        embedded = self.embeddings[oldest_first[:, :run].T.reshape(-1)]  # time-major: step t is rows t*batch...
        inputs = (embedded @ self.kernel + self.input_bias).reshape(run, batch, 3 * units)
        state = np.zeros((batch, units), dtype=np.float32)
        states = np.empty((run, batch, units), dtype=np.float32)
        for t in range(run):
            x = inputs[t]
            inner = state @ self.recurrent_kernel
            inner += self.recurrent_bias
            half = np.tanh(x[:, : 2 * units] + inner[:, : 2 * units])  # 2 sigmoid - 1 of the z and r gates
            reset = 0.5 * half[:, units:] + 0.5
            candidate = np.tanh(x[:, 2 * units:] + reset * inner[:, 2 * units:])
            state = candidate + (0.5 * half[:, :units] + 0.5) * (state - candidate)  # z * state + (1 - z) * candidate
            states[t] = state
        last = states[lengths - 1, np.arange(batch)]
        # NARM: sigmoid-gated weights of every step against the last state (no softmax), masked to the row's length.
        steps_projected = (states.reshape(-1, units) @ self.attend_steps).reshape(run, batch, units)
        weights = _sigmoid(last @ self.attend_last + steps_projected) @ self.attention_score  # (run, batch)
        weights *= np.arange(run)[:, None] < lengths[None, :]
        context = (weights[:, :, None] * states).sum(axis=0)
        return np.concatenate([last, context], axis=1) @ self.project


class _MeanHistory:
    """The mean of the known recent items' id embeddings (padding masked out)."""

    def __init__(self, item_embedding: keras.layers.Layer) -> None:
        self.embeddings = _weights(item_embedding)[0]

    def __call__(self, history: np.ndarray) -> np.ndarray:
        mask = (history > 0).astype(np.float32)
        summed = np.einsum("bt,bte->be", mask, self.embeddings[history])
        return summed / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)


class NumpyQueryTower:
    """Query-tower vectors for a batch of query inputs (`model.two_tower.examples.query_inputs`), in NumPy.

    Built from the trained Keras query tower (`model.two_tower.towers.build_towers`); returns what
    `model.scoring.QueryEncoder` returns, float32 (batch, embedding_dim), unit length.
    """

    def __init__(self, query_model: keras.Model, config: TwoTowerConfig) -> None:
        self.user_embeddings = _weights(query_model.get_layer("user_embedding"))[0]
        if config.history_encoder == "gru":
            self.read_history: _SessionGRU | _MeanHistory = _SessionGRU(query_model.get_layer("history_encoder"))
        else:
            self.read_history = _MeanHistory(query_model.get_layer("item_id_embedding"))
        self.categories_seen, _ = _dense(query_model, "categories_seen", "linear", use_bias=False)
        self.hidden_kernel, self.hidden_bias = _dense(query_model, "query_hidden", "relu", use_bias=True)
        self.out_kernel, self.out_bias = _dense(query_model, "query_out", "linear", use_bias=True)

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        history = np.asarray(inputs["history"])
        categories = np.asarray(inputs["categories"], dtype=np.float32)
        dense = np.asarray(inputs["dense"], dtype=np.float32)
        # The tower's concatenation, in its order: user, history, categories seen, dense features.
        q = np.concatenate([self.user_embeddings[np.asarray(inputs["user"])], self.read_history(history),
                            categories @ self.categories_seen, dense], axis=1)
        q = np.maximum(q @ self.hidden_kernel + self.hidden_bias, 0.0)
        q = q @ self.out_kernel + self.out_bias
        # keras.layers.UnitNormalization: x * min(rsqrt(sum x^2), 1 / 1e-12), without a warning for a zero row.
        return q / np.maximum(np.sqrt(np.sum(q * q, axis=1, keepdims=True)), 1e-12)
