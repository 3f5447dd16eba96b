"""The retrieval task: in-batch softmax over the batch's positive items, with logQ popularity correction.

Every other positive in the batch is a negative; popular items appear as negatives more often than
uniform sampling would, so their logits are lowered by log(q) (Yi et al., RecSys 2019). Other rows
whose positive is the same item are masked out: they are not negatives.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from model import metrics


def in_batch_softmax_loss(query: tf.Tensor, item: tf.Tensor, item_ids: tf.Tensor, item_log_q: tf.Tensor,
                          temperature: float, logq_correction: bool = True) -> tf.Tensor:
    """Mean cross-entropy of each query against its own positive among the batch's positives."""
    logits = tf.matmul(query, item, transpose_b=True) / temperature
    if logq_correction:
        logits -= tf.expand_dims(item_log_q, 0)
    same_item = tf.equal(tf.expand_dims(item_ids, 1), tf.expand_dims(item_ids, 0))
    diagonal = tf.eye(tf.shape(logits)[0], dtype=tf.bool)
    logits = tf.where(tf.logical_and(same_item, tf.logical_not(diagonal)), tf.constant(-1e9, logits.dtype), logits)
    labels = tf.range(tf.shape(logits)[0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def exact_top_k(query_vectors: np.ndarray, item_vectors: np.ndarray, k: int, item_prior: np.ndarray | None = None,
                exclude: np.ndarray | None = None) -> np.ndarray:
    """(queries, k) item indices of the exact top-k over the whole catalogue (row 0 = unknown, never returned).

    `item_prior` is added to every query's scores (the retrieval popularity prior); `exclude` (queries x n item
    indices, 0 = none) are never counted, like items already bought in an evaluation that excludes them.
    """
    scores = query_vectors @ item_vectors.T
    if item_prior is not None:
        scores += item_prior[None, :]
    if exclude is not None:
        np.put_along_axis(scores, exclude.astype(np.int64), -np.inf, axis=1)
    scores[:, 0] = -np.inf
    k = min(k, scores.shape[1] - 1)
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


def retrieval_recall_at_k(query_vectors: np.ndarray, item_vectors: np.ndarray, positives: np.ndarray, k: int,
                          item_prior: np.ndarray | None = None, exclude: np.ndarray | None = None) -> float:
    """`model.metrics.recall_at_k` of each query's one positive item index in its exact top-k, averaged.

    The top-k is unordered (argpartition), which recall does not need; see `exact_top_k` for the arguments.
    """
    top = exact_top_k(query_vectors, item_vectors, k, item_prior, exclude)
    if not len(top):
        return float("nan")
    return float(np.mean([metrics.recall_at_k(row, {positive}, top.shape[1])
                          for row, positive in zip(top.tolist(), np.asarray(positives).tolist(), strict=True)]))


PRIOR_GRID = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)  # multiples of the temperature
FINE_PRIOR_GRID = tuple(0.25 * step for step in range(17))  # 0, 0.25, ..., 4 x the temperature


def choose_popularity_prior(query_vectors: np.ndarray, item_vectors: np.ndarray, positives: np.ndarray,
                            item_log_q: np.ndarray, temperature: float, k: int,
                            exclude: np.ndarray | None = None,
                            grid: tuple[float, ...] = PRIOR_GRID) -> tuple[float, dict[str, float]]:
    """The weight w of `w * log q(item)` added to retrieval scores that maximises validation Recall@k.

    In-batch softmax learns scores relative to how often items are sampled; on unit vectors with a
    temperature the popularity part is hard to express, so it is added back here and its weight is
    chosen on the validation examples (w = 0 keeps the model's own scores).
    """
    results = {}
    for multiple in grid:
        weight = multiple * temperature
        results[f"{weight:g}"] = retrieval_recall_at_k(query_vectors, item_vectors, positives, k,
                                                       weight * item_log_q, exclude)
    best = max(results, key=lambda w: (results[w], -float(w)))
    return float(best), results
