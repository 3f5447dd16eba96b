"""Ranker training examples and fitting: conversions vs viewed-not-converted and sampled negatives.

One example per (session, item) the user interacted with, labelled 1 when it was bought in that
session, plus `negatives_per_positive` random catalogue items in the same context. Split by time:
the latest `holdout_fraction` is only scored (the reported AUC), never trained or early-stopped on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from model.metrics import auc
from model.ranking.features import RankerConfig, ranker_inputs
from model.ranking.wide_deep import build_ranker
from model.two_tower.examples import ITEM_EVENTS, contexts_before, query_inputs, sort_by_time
from model.two_tower.features import FeatureSpec, utc_ms
from streamrec.events import PRODUCT

QueryEncoder = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class RankerExamples:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    ts_ms: np.ndarray
    sampled: np.ndarray  # True for sampled negatives (not seen by the user)

    def take(self, rows: np.ndarray) -> RankerExamples:
        return RankerExamples({k: v[rows] for k, v in self.inputs.items()}, self.labels[rows], self.ts_ms[rows],
                              self.sampled[rows])

    def __len__(self) -> int:
        return len(self.labels)


def ranker_examples(frame: pd.DataFrame, spec: FeatureSpec, encode_queries: QueryEncoder, item_vectors: np.ndarray,
                    config: RankerConfig) -> RankerExamples:
    """Labelled (context, item) rows with the retrieval score of the trained two-tower as a feature."""
    frame = sort_by_time(frame)
    contexts = contexts_before(frame, cap=max(spec.history_length, 20))
    products = frame[(frame["kind"] == PRODUCT) & frame["event_type"].isin(ITEM_EVENTS) & frame["item_id"].notna()]
    products = products.assign(item=spec.items.lookup(products["item_id"]), row=products.index)
    products = products[products["item"] > 0]
    bought = products["event_type"].eq("purchase").groupby([products["session_id"], products["item"]]).transform("any")
    first = products.assign(label=bought.astype(int)).drop_duplicates(["session_id", "item"], keep="first")

    rng = np.random.default_rng(config.seed)
    rows = first["row"].to_numpy()
    items = first["item"].to_numpy()
    labels = first["label"].to_numpy()
    sampled = np.zeros(len(rows), dtype=bool)
    positives = np.flatnonzero(labels == 1)
    all_ts = utc_ms(frame["ts"])
    all_users = frame["user_id"].astype(str).to_numpy()
    negatives = []
    if config.negatives_per_positive and len(positives):
        negatives.append(rng.integers(1, len(spec.items), (len(positives), config.negatives_per_positive)))
    if config.retrieved_negatives_per_positive and len(positives):
        # Hard negatives: what retrieval would hand the ranker in that context, so it learns to order candidates.
        pos_rows = rows[positives]
        queries = encode_queries(query_inputs(spec, all_users[pos_rows], [contexts[r] for r in pos_rows],
                                              all_ts[pos_rows]))
        negatives.append(_retrieved_negatives(queries, item_vectors, items[positives], config, rng))
    if negatives:
        neg_items = np.concatenate(negatives, axis=1).reshape(-1)
        neg_rows = np.repeat(rows[positives], len(neg_items) // len(positives))
        rows, items = np.concatenate([rows, neg_rows]), np.concatenate([items, neg_items])
        labels = np.concatenate([labels, np.zeros(len(neg_rows), dtype=labels.dtype)])
        sampled = np.concatenate([sampled, np.ones(len(neg_rows), dtype=bool)])

    ts_ms = all_ts[rows]
    users = all_users[rows]
    example_contexts = [contexts[r] for r in rows]
    queries = encode_queries(query_inputs(spec, users, example_contexts, ts_ms))
    scores = np.einsum("ij,ij->i", queries, item_vectors[items])
    inputs = ranker_inputs(spec, users, items, example_contexts, scores, ts_ms)
    return RankerExamples(inputs, labels.astype(np.float32), ts_ms, sampled)


def _retrieved_negatives(queries: np.ndarray, item_vectors: np.ndarray, positives: np.ndarray, config: RankerConfig,
                         rng: np.random.Generator, chunk: int = 2048) -> np.ndarray:
    """(positives, n) items sampled from each query's top `retrieved_pool` by q.v, never the positive itself."""
    n, pool = config.retrieved_negatives_per_positive, min(config.retrieved_pool, len(item_vectors) - 2)
    out = np.zeros((len(queries), n), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ item_vectors.T
        scores[:, 0] = -np.inf
        scores[np.arange(len(scores)), positives[start : start + chunk]] = -np.inf
        top = np.argpartition(-scores, pool - 1, axis=1)[:, :pool]
        picks = rng.integers(0, pool, (len(top), n))
        out[start : start + chunk] = np.take_along_axis(top, picks, axis=1)
    return out


@dataclass
class RankerReport:
    """Time-ordered holdout AUC: overall, and on the harder slice without sampled negatives."""

    holdout_auc: float
    holdout_auc_viewed_only: float
    holdout_examples: int
    holdout_positives: int
    train_examples: int
    positive_class_weight: float
    epochs_run: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _split(examples: RankerExamples, config: RankerConfig) -> tuple[RankerExamples, RankerExamples, RankerExamples]:
    order = np.argsort(examples.ts_ms, kind="stable")
    holdout_cut = int(len(order) * (1 - config.holdout_fraction))
    val_cut = int(holdout_cut * (1 - config.validation_fraction))
    return examples.take(order[:val_cut]), examples.take(order[val_cut:holdout_cut]), examples.take(order[holdout_cut:])


def train_ranker(spec: FeatureSpec, examples: RankerExamples, config: RankerConfig,
                 progress: bool = True) -> tuple[keras.Model, RankerReport]:
    """Fit with class weights (conversions are rare) and early stopping; report AUC on the latest slice."""
    started = time.monotonic()
    train, validation, holdout = _split(examples, config)
    n_pos = max(1.0, float(train.labels.sum()))
    positive_weight = float(min(config.max_positive_weight, (len(train) - n_pos) / n_pos))
    model = build_ranker(spec, config)
    normalize = model.get_layer("dense_normalize")
    normalize.adapt(train.inputs["dense"])
    # A feature nearly constant in training (session time on data without sessions) must not be divided by
    # ~0 at serving, where it can vary: floor the variance.
    normalize.adapt_variance.assign(np.maximum(normalize.adapt_variance.numpy(), 1e-2))
    normalize.finalize_state()
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.AUC(from_logits=True, name="auc")])
    # Stop on validation AUC: the validation loss is unweighted while training is class-weighted, so it rises
    # as the model leans towards conversions even while the ranking improves.
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=config.patience,
                                         restore_best_weights=True)
    # Keras prints its epoch lines to stdout; progress belongs on stderr (stdout carries `--json` output alone).
    with contextlib.redirect_stdout(sys.stderr):
        fitted = model.fit(
            train.inputs, train.labels, batch_size=config.batch_size, epochs=config.epochs,
            validation_data=(validation.inputs, validation.labels) if len(validation) else None,
            class_weight={0: 1.0, 1: max(1.0, positive_weight)}, callbacks=[stop] if len(validation) else [],
            verbose=2 if progress else 0, shuffle=True,
        )
    scores = model.predict(holdout.inputs, batch_size=8192, verbose=0) if len(holdout) else np.zeros(0)
    viewed = ~holdout.sampled
    report = RankerReport(
        holdout_auc=auc(holdout.labels, scores),
        holdout_auc_viewed_only=auc(holdout.labels[viewed], scores[viewed]),
        holdout_examples=len(holdout), holdout_positives=int(holdout.labels.sum()), train_examples=len(train),
        positive_class_weight=positive_weight, epochs_run=len(fitted.history["loss"]),
        seconds=time.monotonic() - started,
    )
    return model, report
