"""The trained item tower as a NumPy forward pass: how items added while serving get their vectors.

`TwoTowerRecommender.add_items` embeds a product the model never saw (from `observe`, in the poll loop,
when its first event arrives). An eager Keras call of the item tower costs ~11 ms for one item, paid by
every user of that batch; the arithmetic (four embedding rows, two small Dense layers) is microseconds
in NumPy on the Keras model's own weights, read by layer name with `model.two_tower.numpy_query`'s helpers.
The Keras tower stays the reference: the unit tests hold both to the same vectors.
"""

from __future__ import annotations

import keras
import numpy as np

from model.two_tower.numpy_query import _dense, _weights

# The item tower's inputs in the order its Concatenate layer joins their embeddings (`build_towers`).
_PARTS = (("item", "item_id_embedding"), ("category", "item_category_embedding"),
          ("brand", "item_brand_embedding"), ("price_band", "item_price_band_embedding"))


class NumpyItemTower:
    """Item-tower vectors for a batch of item inputs (`FeatureSpec.attribute_inputs`), in NumPy.

    Built from the trained Keras item tower (`model.two_tower.towers.build_towers`); returns what it returns,
    float32 (batch, embedding_dim), unit length.
    """

    def __init__(self, item_model: keras.Model) -> None:
        self.embeddings = [(key, _weights(item_model.get_layer(layer))[0]) for key, layer in _PARTS]
        self.hidden_kernel, self.hidden_bias = _dense(item_model, "item_hidden", "relu", use_bias=True)
        self.out_kernel, self.out_bias = _dense(item_model, "item_out", "linear", use_bias=True)

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        x = np.concatenate([table[np.asarray(inputs[key])] for key, table in self.embeddings], axis=1)
        hidden = np.maximum(x @ self.hidden_kernel + self.hidden_bias, 0.0)
        out = hidden @ self.out_kernel + self.out_bias
        # keras.layers.UnitNormalization is out * min(rsqrt(sum out^2), 1e12); dividing by the clipped norm is the
        # same and gives a zero row back as zeros, without a divide warning.
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
