"""Fit the two towers on time-ordered examples with early stopping on a later validation slice."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
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
    retrieval_recall_at_k,
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


@dataclass
class _ItemAttributes:
    """Per-vocabulary-index attribute arrays the item tower reads besides the id."""

    category: np.ndarray
    brand: np.ndarray
    price_band: np.ndarray

    @classmethod
    def of(cls, spec: FeatureSpec) -> _ItemAttributes:
        return cls(np.asarray(spec.item_category, np.int32), np.asarray(spec.item_brand, np.int32),
                   np.asarray(spec.item_price_band, np.int32))


def make_train_step(towers: Towers, spec: FeatureSpec, config: TwoTowerConfig, optimizer: keras.optimizers.Optimizer,
                    variables: list) -> Callable:
    """A compiled step: in-batch softmax (logQ-corrected) plus the towers' regularisation, one Adam update."""
    log_q = tf.constant(np.asarray(spec.item_log_q, dtype=np.float32))
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

    return step


def validation_sample(validation: RetrievalExamples, validation_exclude: np.ndarray | None, config: TwoTowerConfig,
                      rng: np.random.Generator) -> tuple[RetrievalExamples, np.ndarray | None]:
    """Up to 20k validation rows and the items never counted for each (the given ones, else the query history)."""
    val_rows = rng.permutation(len(validation))[:20000]
    val_sample = validation.take(val_rows) if len(validation) else validation
    if validation_exclude is not None:
        return val_sample, validation_exclude[val_rows]
    return val_sample, val_sample.queries["history"] if config.validation_excludes_history else None


def train_epoch(step: Callable, train: RetrievalExamples, attributes: _ItemAttributes, config: TwoTowerConfig,
                rng: np.random.Generator, epoch: int, progress: bool) -> float:
    """One pass over shuffled batches with id dropout on both sides; returns the mean batch loss."""
    order = rng.permutation(len(train))
    losses = []
    n_batches = max(1, len(train) // config.batch_size)
    bar = tqdm(range(n_batches), desc=f"two-tower epoch {epoch + 1}", disable=not progress, leave=False)
    for b in bar:
        rows = order[b * config.batch_size : (b + 1) * config.batch_size]
        positives = train.items[rows]
        hidden = rng.random(len(rows)) < config.item_id_dropout
        item_inputs = {
            "item": np.where(hidden, 0, positives).astype(np.int32),  # id dropout trains the attribute path
            "category": attributes.category[positives], "brand": attributes.brand[positives],
            "price_band": attributes.price_band[positives],
        }
        queries = {k: v[rows] for k, v in train.queries.items()}
        if config.user_id_dropout:
            # Hidden user ids teach the tower to answer from the session alone (cold and sparse users).
            queries["user"] = np.where(rng.random(len(rows)) < config.user_id_dropout, 0, queries["user"])
        losses.append(float(step(queries, item_inputs, tf.constant(positives))))
        if b % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return float(np.mean(losses))


def validation_recall(towers: Towers, spec: FeatureSpec, val_sample: RetrievalExamples,
                      val_exclude: np.ndarray | None, config: TwoTowerConfig, train_loss: float) -> float:
    """Recall@k on the validation sample (minus the training loss when there is no validation data)."""
    if not len(val_sample):
        return -train_loss
    return retrieval_recall_at_k(query_vectors(towers, val_sample.queries), item_vectors(towers, spec),
                                 val_sample.items, config.validation_k, exclude=val_exclude)


@dataclass
class _BestEpoch:
    """Early stopping: the weights of the best validation epoch so far, and how many epochs since."""

    variables: list
    best: float = -1.0
    weights: list | None = None
    stale: int = 0

    def update(self, recall: float, epoch: int, history: TwoTowerHistory, patience: int) -> bool:
        """Record one epoch's recall; True when training should stop."""
        if recall > self.best:
            self.best, self.stale, history.best_epoch = recall, 0, epoch + 1
            self.weights = [v.numpy().copy() for v in self.variables]
            return False
        self.stale += 1
        return self.stale >= patience

    def restore(self) -> None:
        if self.weights is not None:
            for variable, value in zip(self.variables, self.weights, strict=True):
                variable.assign(value)


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
    step = make_train_step(towers, spec, config, keras.optimizers.Adam(config.learning_rate), variables)
    attributes = _ItemAttributes.of(spec)
    history = TwoTowerHistory(train_examples=len(train), validation_examples=len(validation))
    rng = np.random.default_rng(config.seed)
    val_sample, val_exclude = validation_sample(validation, validation_exclude, config, rng)
    best = _BestEpoch(variables)
    for epoch in range(config.epochs):
        history.train_loss.append(train_epoch(step, train, attributes, config, rng, epoch, progress))
        if fixed_epochs:
            history.best_epoch = epoch + 1
            if progress:
                tqdm.write(f"two-tower epoch {epoch + 1} (fixed count): loss {history.train_loss[-1]:.4f}",
                           file=sys.stderr)
            continue
        recall = validation_recall(towers, spec, val_sample, val_exclude, config, history.train_loss[-1])
        history.validation_recall.append(recall)
        log.info("two-tower epoch %d loss %.4f validation recall@%d %.4f", epoch + 1, history.train_loss[-1],
                 config.validation_k, recall)
        if progress:
            tqdm.write(f"two-tower epoch {epoch + 1}: loss {history.train_loss[-1]:.4f} "
                       f"validation recall@{config.validation_k} {recall:.4f}", file=sys.stderr)
        if best.update(recall, epoch, history, config.patience):
            break
    best.restore()
    if len(val_sample) and not fixed_epochs:
        choose_prior(towers, spec, val_sample, val_exclude, config, history)
    history.seconds = time.monotonic() - started
    return towers, history


def choose_prior(towers: Towers, spec: FeatureSpec, val_sample: RetrievalExamples, val_exclude: np.ndarray | None,
                 config: TwoTowerConfig, history: TwoTowerHistory) -> None:
    """Pick the popularity prior w (score = q.v + w * log q) on the validation sample, into `history`."""
    # The per-user holdout is small and asks the evaluation's question: it affords (and merits) a finer grid.
    grid = FINE_PRIOR_GRID if config.validation == "per-user-holdout" else PRIOR_GRID
    history.popularity_prior, history.validation_recall_by_prior = choose_popularity_prior(
        query_vectors(towers, val_sample.queries), item_vectors(towers, spec), val_sample.items,
        np.asarray(spec.item_log_q, dtype=np.float32), config.temperature, config.validation_k, val_exclude,
        grid)
