"""Fit the two towers on time-ordered examples with early stopping on a later validation slice."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from model.two_tower.examples import RetrievalExamples
from model.two_tower.features import FeatureSpec
from model.two_tower.retrieval import (
    FINE_PRIOR_GRID,
    PRIOR_GRID,
    choose_popularity_prior,
    in_batch_softmax_loss,
    recall_at_k,
)
from model.two_tower.towers import Towers, TwoTowerConfig, build_towers

log = logging.getLogger(__name__)


@dataclass
class TwoTowerHistory:
    """What training did, epoch by epoch (saved as the bundle's training metrics)."""

    train_loss: list[float] = field(default_factory=list)
    validation_recall: list[float] = field(default_factory=list)
    best_epoch: int = 0
    popularity_prior: float = 0.0  # w in score = q.v + w * log q(item), chosen on the validation slice
    validation_recall_by_prior: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    train_examples: int = 0
    validation_examples: int = 0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def time_split(examples: RetrievalExamples, validation_fraction: float) -> tuple[RetrievalExamples, RetrievalExamples]:
    """The earliest examples train, the latest validate: no peeking at the future."""
    order = np.argsort(examples.ts_ms, kind="stable")
    cut = int(len(order) * (1 - validation_fraction))
    return examples.take(order[:cut]), examples.take(order[cut:])


def item_vectors(towers: Towers, spec: FeatureSpec, batch_size: int = 8192) -> np.ndarray:
    """Embeddings of every catalogue item (row i = vocabulary index i)."""
    all_items = np.arange(len(spec.items))
    parts = [
        np.asarray(towers.item(spec.item_inputs(all_items[i : i + batch_size]), training=False))
        for i in range(0, len(all_items), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)


def query_vectors(towers: Towers, queries: dict[str, np.ndarray], batch_size: int = 8192) -> np.ndarray:
    n = len(next(iter(queries.values())))
    parts = [
        np.asarray(towers.query({k: v[i : i + batch_size] for k, v in queries.items()}, training=False))
        for i in range(0, n, batch_size)
    ]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 1), np.float32)


def _trainable(towers: Towers) -> list:
    seen, out = set(), []
    for variable in towers.query.trainable_weights + towers.item.trainable_weights:
        if id(variable) not in seen:  # the item-id embedding is shared by both towers
            seen.add(id(variable))
            out.append(variable)
    return out


def train_two_tower(
    spec: FeatureSpec, examples: RetrievalExamples, config: TwoTowerConfig, progress: bool = True,
    validation: RetrievalExamples | None = None, validation_exclude: np.ndarray | None = None,
    fixed_epochs: bool = False,
) -> tuple[Towers, TwoTowerHistory]:
    """Train with in-batch softmax; keep the weights of the epoch with the best validation Recall@k.

    `validation_exclude` (validation rows x item indices) are items never counted for that row (the per-user
    holdout passes the user's kept purchases); `fixed_epochs` trains all `config.epochs` and keeps the last
    weights (a refit on all data once the epoch count was chosen elsewhere).
    """
    started = time.monotonic()
    if validation is None:
        train, validation = time_split(examples, config.validation_fraction)
    else:
        train = examples
    towers = build_towers(spec, config)
    variables = _trainable(towers)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    log_q = tf.constant(np.asarray(spec.item_log_q, dtype=np.float32))
    item_category = np.asarray(spec.item_category, np.int32)
    item_brand = np.asarray(spec.item_brand, np.int32)
    item_band = np.asarray(spec.item_price_band, np.int32)
    regularized = [m for m in (towers.query, towers.item)]

    @tf.function(reduce_retracing=True)
    def step(queries, item_inputs, positives):
        with tf.GradientTape() as tape:
            q = towers.query(queries, training=True)
            v = towers.item(item_inputs, training=True)
            loss = in_batch_softmax_loss(q, v, positives, tf.gather(log_q, positives), config.temperature,
                                         config.logq_correction)
            penalty = tf.add_n([tf.add_n(m.losses) for m in regularized if m.losses] or [tf.constant(0.0)])
            total = loss + penalty
        grads = tape.gradient(total, variables)
        optimizer.apply(grads, variables)
        return loss

    history = TwoTowerHistory(train_examples=len(train), validation_examples=len(validation))
    rng = np.random.default_rng(config.seed)
    best, best_weights, stale = -1.0, None, 0
    n_batches = max(1, len(train) // config.batch_size)
    val_rows = rng.permutation(len(validation))[:20000]
    val_sample = validation.take(val_rows) if len(validation) else validation
    if validation_exclude is not None:
        val_exclude = validation_exclude[val_rows]
    else:
        val_exclude = val_sample.queries["history"] if config.validation_excludes_history else None
    for epoch in range(config.epochs):
        order = rng.permutation(len(train))
        losses = []
        bar = tqdm(range(n_batches), desc=f"two-tower epoch {epoch + 1}", disable=not progress, leave=False)
        for b in bar:
            rows = order[b * config.batch_size : (b + 1) * config.batch_size]
            positives = train.items[rows]
            hidden = rng.random(len(rows)) < config.item_id_dropout
            item_inputs = {
                "item": np.where(hidden, 0, positives).astype(np.int32),  # id dropout trains the attribute path
                "category": item_category[positives], "brand": item_brand[positives],
                "price_band": item_band[positives],
            }
            queries = {k: v[rows] for k, v in train.queries.items()}
            if config.user_id_dropout:
                # Hidden user ids teach the tower to answer from the session alone (cold and sparse users).
                queries["user"] = np.where(rng.random(len(rows)) < config.user_id_dropout, 0, queries["user"])
            losses.append(float(step(queries, item_inputs, tf.constant(positives))))
            if b % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        history.train_loss.append(float(np.mean(losses)))
        if fixed_epochs:
            history.best_epoch = epoch + 1
            if progress:
                tqdm.write(f"two-tower epoch {epoch + 1} (fixed count): loss {history.train_loss[-1]:.4f}")
            continue
        if len(val_sample):
            recall = recall_at_k(query_vectors(towers, val_sample.queries), item_vectors(towers, spec),
                                 val_sample.items, config.validation_k, exclude=val_exclude)
        else:
            recall = -history.train_loss[-1]
        history.validation_recall.append(recall)
        log.info("two-tower epoch %d loss %.4f validation recall@%d %.4f", epoch + 1, history.train_loss[-1],
                 config.validation_k, recall)
        if progress:
            tqdm.write(f"two-tower epoch {epoch + 1}: loss {history.train_loss[-1]:.4f} "
                       f"validation recall@{config.validation_k} {recall:.4f}")
        if recall > best:
            best, stale, history.best_epoch = recall, 0, epoch + 1
            best_weights = [v.numpy().copy() for v in variables]
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_weights is not None:
        for variable, value in zip(variables, best_weights, strict=True):
            variable.assign(value)
    if len(val_sample) and not fixed_epochs:
        # The per-user holdout is small and asks the evaluation's question: it affords (and merits) a finer grid.
        grid = FINE_PRIOR_GRID if config.validation == "per-user-holdout" else PRIOR_GRID
        history.popularity_prior, history.validation_recall_by_prior = choose_popularity_prior(
            query_vectors(towers, val_sample.queries), item_vectors(towers, spec), val_sample.items,
            np.asarray(spec.item_log_q, dtype=np.float32), config.temperature, config.validation_k, val_exclude,
            grid)
    history.seconds = time.monotonic() - started
    return towers, history
