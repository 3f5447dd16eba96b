"""SessionEncoder: padded item sequences + lengths -> one vector that ignores padding and sees order."""

from __future__ import annotations

import keras
import numpy as np

from model.session_gru.encoder import SessionEncoder


def encoder(seed: int = 3) -> SessionEncoder:
    keras.utils.set_random_seed(seed)
    embedding = keras.layers.Embedding(30, 8)
    return SessionEncoder(embedding, hidden_units=12, output_dim=8)


def encode(layer: SessionEncoder, rows: list[list[int]], width: int) -> np.ndarray:
    items = np.zeros((len(rows), width), dtype=np.int32)
    for i, row in enumerate(rows):
        items[i, : len(row)] = row
    lengths = np.array([len(r) for r in rows], dtype=np.int32)
    return np.asarray(layer(items, lengths))


def test_one_vector_per_session():
    vectors = encode(encoder(), [[1, 2, 3], [4], [5, 6]], width=5)
    assert vectors.shape == (3, 8)
    assert np.all(np.isfinite(vectors))


def test_padding_width_and_content_beyond_the_length_do_not_matter():
    layer = encoder()
    narrow = encode(layer, [[1, 2, 3], [4]], width=3)
    wide = encode(layer, [[1, 2, 3], [4]], width=9)
    np.testing.assert_allclose(narrow, wide, atol=1e-6)
    garbage = np.array([[1, 2, 3, 17, 18], [4, 9, 9, 9, 9]], dtype=np.int32)  # junk after each length
    np.testing.assert_allclose(np.asarray(layer(garbage, np.array([3, 1]))), narrow, atol=1e-6)


def test_order_and_the_last_item_change_the_vector():
    layer = encoder()
    forward, backward, other_last = encode(layer, [[1, 2, 3], [3, 2, 1], [1, 2, 7]], width=3)
    assert not np.allclose(forward, backward, atol=1e-4)
    assert not np.allclose(forward, other_last, atol=1e-4)


def test_dropout_only_in_training():
    layer = encoder()
    items, lengths = np.array([[1, 2, 3]], dtype=np.int32), np.array([3], dtype=np.int32)
    np.testing.assert_allclose(np.asarray(layer(items, lengths)), np.asarray(layer(items, lengths)))
    trained = [np.asarray(layer(items, lengths, training=True)) for _ in range(3)]
    assert not all(np.allclose(trained[0], t) for t in trained[1:])


def test_config_round_trip_rebuilds_the_same_layer():
    layer = encoder()
    before = encode(layer, [[1, 2], [3, 4, 5]], width=4)
    clone = SessionEncoder.from_config(layer.get_config())
    encode(clone, [[1]], width=1)  # build
    clone.item_embedding.set_weights(layer.item_embedding.get_weights())
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(encode(clone, [[1, 2], [3, 4, 5]], width=4), before, atol=1e-6)
    assert clone.output_dim == 8 and clone.hidden_units == 12
