"""Wide & deep ranker: learns a planted conversion signal, and the serving scorer equals the Keras model."""

from __future__ import annotations

import numpy as np
import pytest

from model.metrics import auc
from model.ranking.features import RANKER_DENSE_FEATURES, RankerConfig
from model.ranking.training import RankerExamples, train_ranker
from model.scoring import RankerScorer
from model.two_tower.features import FeatureSpec, Vocabulary


def _spec(users: int, items: int, categories: int) -> FeatureSpec:
    rng = np.random.default_rng(0)
    return FeatureSpec(
        users=Vocabulary(tokens=["[UNK]"] + [f"u{i}" for i in range(users)]),
        items=Vocabulary(tokens=["[UNK]"] + [f"p{i}" for i in range(items)]),
        categories=Vocabulary(tokens=["[UNK]"] + [f"c{i}" for i in range(categories)]),
        brands=Vocabulary(tokens=["[UNK]"]), price_band_edges=[10.0, 20.0],
        item_category=[0, *rng.integers(1, categories + 1, items).tolist()], item_brand=[0] * (items + 1),
        item_price_band=[0] * (items + 1), item_price=[0.0] * (items + 1), item_log_q=[0.0] * (items + 1),
        item_log_popularity=[0.0] * (items + 1),
    )


@pytest.fixture(scope="module")
def planted():
    """Conversions depend on the retrieval score and on each user's favourite category (a user x category cross)."""
    rng = np.random.default_rng(1)
    spec = _spec(users=200, items=300, categories=6)
    n = 40_000
    users = rng.integers(1, 201, n)
    items = rng.integers(1, 301, n)
    category = np.asarray(spec.item_category)[items]
    dense = rng.normal(size=(n, len(RANKER_DENSE_FEATURES))).astype(np.float32)
    favourite = users % 6 + 1
    logit = -4.0 + 1.5 * dense[:, 4] + 2.0 * (category == favourite)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    inputs = {"user": users.astype(np.int32), "item": items.astype(np.int32), "category": category.astype(np.int32),
              "dense": dense}
    examples = RankerExamples(inputs, labels, np.arange(n), np.zeros(n, dtype=bool))
    return spec, examples, logit


def test_ranker_learns_the_planted_signal_on_a_later_holdout(planted):
    spec, examples, true_logit = planted
    model, report = train_ranker(spec, examples, RankerConfig(epochs=6, batch_size=512), progress=False)
    assert examples.labels.mean() < 0.1  # heavily imbalanced, as conversions are
    assert report.positive_class_weight > 5
    holdout = slice(int(len(examples) * 0.8), None)
    oracle = auc(examples.labels[holdout], true_logit[holdout])
    assert 0.75 < report.holdout_auc <= oracle + 0.01
    assert report.holdout_auc > oracle - 0.08  # near what knowing the planted rule gives


def test_serving_scorer_matches_keras_predict(planted):
    spec, examples, _ = planted
    model, _ = train_ranker(spec, examples.take(np.arange(5000)), RankerConfig(epochs=1), progress=False)
    rows = {k: v[:200] for k, v in examples.inputs.items()}
    served = RankerScorer(model)(rows)
    assert served.shape == (200,)
    assert np.abs(served - model.predict(rows, verbose=0)).max() < 1e-5


def test_training_progress_goes_to_stderr_never_stdout(planted, capfd):
    """`--json` commands print JSON alone on stdout: the ranker's epoch lines must go to stderr."""
    spec, examples, _ = planted
    train_ranker(spec, examples.take(np.arange(3000)), RankerConfig(epochs=1), progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "loss" in err
