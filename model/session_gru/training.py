"""Train the next-item network: length-bucketed numpy batches, one compiled step, Adam with per-epoch decay."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from model.datasets.srgnn import PrefixSamples
from model.session_gru.network import NextItemModel


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
