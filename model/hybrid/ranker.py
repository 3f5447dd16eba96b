"""A listwise wide & deep ranker over one trigger's candidates, trained in TensorFlow, served in NumPy.

The network scores each candidate from its features (a linear "wide" part plus a two-layer "deep" part); the loss
is the softmax cross-entropy of the next item among the trigger's candidates (padding masked out). keras-rs has
pairwise losses and ListMLE but no sampled/listwise softmax over a masked list, and its `FeatureCross` adds nothing
over an MLP on a few dozen dense features, so both are written here (a dozen lines). Epochs are chosen on a
validation split of the logged triggers (the newest share, by time), never on a test split: the best validation
loss's weights are kept. Serving runs the same arithmetic in NumPy on the exported weights (no TensorFlow call
per trigger); a test checks it gives the Keras model's scores.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class RankerConfig:
    hidden: tuple[int, ...] = (64, 32)
    learning_rate: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 30
    patience: int = 3
    validation_share: float = 0.2
    seed: int = 7


@dataclass
class TrainingReport:
    epochs_run: int
    best_epoch: int
    train_triggers: int
    validation_triggers: int
    validation_loss: float
    history: list[dict[str, float]] = field(default_factory=list)


class ListwiseRanker:
    """Standardised features -> wide + deep logit per candidate; `scores` is the NumPy forward pass."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]],
                 wide: tuple[np.ndarray, np.ndarray], feature_names: list[str]) -> None:
        self.mean, self.std, self.layers, self.wide, self.feature_names = mean, std, layers, wide, feature_names

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Logits for a (candidates x features) matrix (or a batch of them: the last axis is the features)."""
        x = (features - self.mean) / self.std
        h = x
        for j, (kernel, bias) in enumerate(self.layers):
            h = h @ kernel + bias
            if j < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return (h + x @ self.wide[0] + self.wide[1])[..., 0]

    # --- persistence -------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "std": self.std, "wide_kernel": self.wide[0], "wide_bias": self.wide[1]}
        for j, (kernel, bias) in enumerate(self.layers):
            arrays[f"kernel_{j}"], arrays[f"bias_{j}"] = kernel, bias
        np.savez(folder / "ranker.npz", **arrays)
        (folder / "ranker.json").write_text(json.dumps({"layers": len(self.layers), "features": self.feature_names}))

    @classmethod
    def load(cls, folder: Path) -> ListwiseRanker:
        meta = json.loads((folder / "ranker.json").read_text())
        arrays = np.load(folder / "ranker.npz")
        layers = [(arrays[f"kernel_{j}"], arrays[f"bias_{j}"]) for j in range(meta["layers"])]
        return cls(arrays["mean"], arrays["std"], layers, (arrays["wide_kernel"], arrays["wide_bias"]),
                   meta["features"])


def _network(width: int, config: RankerConfig):
    import keras

    inputs = keras.Input(shape=(None, width), name="features")
    deep = inputs
    for j, units in enumerate(config.hidden):
        deep = keras.layers.Dense(units, activation="relu", name=f"deep_{j}")(deep)
    deep = keras.layers.Dense(1, name="deep_out")(deep)
    wide = keras.layers.Dense(1, name="wide")(inputs)
    logits = keras.layers.Add(name="logit")([deep, wide])
    return keras.Model(inputs, keras.layers.Reshape((-1,))(logits))


def _masked_softmax_loss(labels, logits, mask):
    import tensorflow as tf

    logits = tf.where(mask, logits, tf.fill(tf.shape(logits), -1e9))
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def weighted_logistic_loss(positive_weight: float):
    """Binary cross-entropy per candidate, positives weighted by `positive_weight` (the rare purchases), padding
    out; the mean is over real candidates."""

    def loss(labels, logits, mask):
        import tensorflow as tf

        per = tf.nn.weighted_cross_entropy_with_logits(labels=labels, logits=logits, pos_weight=positive_weight)
        weights = tf.cast(mask, per.dtype)
        return tf.reduce_sum(per * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)

    return loss


def train_ranker(features: np.ndarray, mask: np.ndarray, labels: np.ndarray, feature_names: list[str],
                 config: RankerConfig | None = None, progress: bool = True) -> tuple[ListwiseRanker, TrainingReport]:
    """Fit on (triggers x candidates x features) with the positive's index per trigger, triggers in time order.

    The newest `validation_share` of the triggers is the validation split; training stops `patience` epochs after
    the best validation loss, whose weights are returned.
    """
    config = config or RankerConfig()
    n = len(labels)
    cut = int(n * (1 - config.validation_share))
    return fit_wide_deep(features, mask, labels, cut, n, _masked_softmax_loss, feature_names, config, progress,
                         "ranker")


def fit_wide_deep(features: np.ndarray, mask: np.ndarray, targets: np.ndarray, cut: int, end: int, loss_fn,
                  feature_names: list[str], config: RankerConfig, progress: bool,
                  what: str) -> tuple[ListwiseRanker, TrainingReport]:
    """The wide & deep network fitted on triggers [0, cut) with `loss_fn(targets, logits, mask)`, epochs chosen
    on [cut, end) (the best validation loss's weights are kept; triggers after `end` are not seen)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    if cut < 1 or cut >= end:
        raise ValueError(f"need triggers on both sides of the validation cut: {end} logged")
    rows = features[:cut][mask[:cut]]
    mean = rows.mean(axis=0)
    std = rows.std(axis=0)
    std[std < 1e-6] = 1.0
    x = ((features - mean) / std).astype(np.float32)
    x[~mask] = 0.0
    model = _network(features.shape[-1], config)
    optimizer = keras.optimizers.Adam(config.learning_rate)

    @tf.function(reduce_retracing=True)
    def step(xb, yb, mb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True), mb)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables,
                                      strict=True))
        return loss

    @tf.function(reduce_retracing=True)
    def evaluate(xb, yb, mb):
        return loss_fn(yb, model(xb, training=False), mb)

    rng = np.random.default_rng(config.seed)
    best, best_epoch, best_weights, history = np.inf, 0, model.get_weights(), []
    for epoch in range(1, config.max_epochs + 1):
        order = rng.permutation(cut)
        losses = [float(step(x[b], targets[b], mask[b]))
                  for b in (order[i:i + config.batch_size] for i in range(0, cut, config.batch_size))]
        valid = float(evaluate(x[cut:end], targets[cut:end], mask[cut:end]))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "validation_loss": valid})
        if progress:
            log.info("%s epoch %d: train %.4f, validation %.4f", what, epoch, np.mean(losses), valid)
        if valid < best - 1e-5:
            best, best_epoch, best_weights = valid, epoch, model.get_weights()
        elif epoch - best_epoch >= config.patience:
            break
    model.set_weights(best_weights)
    dense = [model.get_layer(f"deep_{j}") for j in range(len(config.hidden))] + [model.get_layer("deep_out")]
    layers = [(np.asarray(d.kernel), np.asarray(d.bias)) for d in dense]
    wide_layer = model.get_layer("wide")
    ranker = ListwiseRanker(mean.astype(np.float32), std.astype(np.float32), layers,
                            (np.asarray(wide_layer.kernel), np.asarray(wide_layer.bias)), feature_names)
    ranker.keras_model = model  # kept for the test that NumPy serving gives the Keras scores
    report = TrainingReport(epochs_run=len(history), best_epoch=best_epoch, train_triggers=cut,
                            validation_triggers=end - cut, validation_loss=best, history=history)
    return ranker, report
