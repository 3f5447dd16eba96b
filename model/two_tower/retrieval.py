"""The retrieval task: in-batch softmax over the batch's positive items, with logQ popularity correction.

Every other positive in the batch is a negative; popular items appear as negatives more often than
uniform sampling would, so their logits are lowered by log(q) (Yi et al., RecSys 2019). Other rows
whose positive is the same item are masked out: they are not negatives.
"""

from __future__ import annotations

import tensorflow as tf


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


def recall_at_k(query_vectors, item_vectors, positives, k: int, exclude=None) -> float:
    """Share of queries whose positive item index is in the exact top-k over the whole catalogue (row 0 = unknown)."""
    import numpy as np

    scores = query_vectors @ item_vectors.T
    scores[:, 0] = -np.inf
    if exclude is not None:
        rows, cols = exclude
        scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1] - 1)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(positives)[:, None], axis=1)))
