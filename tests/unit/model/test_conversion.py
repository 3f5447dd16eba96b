"""The conversion head: labels from later purchases in the session, AUC, a fit that must find the purchase signal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.hybrid.conversion import ConversionExamples, auc, conversion_examples, train_conversion
from model.hybrid.example_log import LoggedTrigger
from model.hybrid.ranker import RankerConfig


def test_a_candidate_is_converted_when_its_session_buys_it_after_the_trigger():
    frame = pd.DataFrame({
        "session_id": ["s", "s", "s", "t"],
        "ts": pd.to_datetime([500, 1500, 2500, 3000], unit="ms", utc=True),
        "event_type": ["purchase", "page_view", "purchase", "purchase"],
        "item_id": ["a", "b", "c", "b"],
    })
    features = np.ones((3, 2), np.float32)
    logged = [
        LoggedTrigger("s", 2000, "b", ["a", "b", "c"], features, np.array([3.0, 2.0, 1.0])),
        LoggedTrigger("s", 1000, "b", ["c", "a"], features[:2]),  # older: comes first
    ]
    examples = conversion_examples(logged, frame)
    # a was bought before both triggers, b only in another session, c after both
    assert examples.converted.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert examples.mask.tolist() == [[True, True, False], [True, True, True]]
    assert examples.fusion[1].tolist() == [3.0, 2.0, 1.0]


def test_auc_is_the_share_of_positive_negative_pairs_ranked_right():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=200).astype(float)  # many ties
    labels = (rng.random(200) < 0.2).astype(float)
    pos, neg = scores[labels > 0], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert np.isclose(auc(scores, labels), pairs)
    assert np.isnan(auc(scores, np.zeros(200)))


def _planted(n: int = 2000, candidates: int = 10, seed: int = 0) -> ConversionExamples:
    """Purchases (about 3%) follow feature 1; the fusion score is noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, candidates, 4)).astype(np.float32)
    converted = (features[..., 1] + 0.5 * rng.normal(size=(n, candidates)) > 2.2).astype(np.float32)
    mask = np.ones((n, candidates), bool)
    return ConversionExamples(features, mask, converted, rng.random((n, candidates)).astype(np.float32))


def test_the_conversion_head_finds_the_purchase_signal_the_retrieval_score_lacks():
    examples = _planted()
    model, report = train_conversion(examples, ["s:present", "s:reciprocal_rank", "s:relative_score", "other"],
                                     ["s"], config=RankerConfig(max_epochs=6, patience=2), progress=False)
    assert model is not None and report.skipped is None
    assert report.holdout_triggers == 300 and report.holdout_purchases > 0
    assert report.auc["conversion head"] > 0.9
    assert abs(report.auc["retrieval (fusion of the sources)"] - 0.5) < 0.1
    assert report.sources_auc["s"] > 0.9  # feature 1 is that source's reciprocal rank here


def test_without_purchases_the_head_is_skipped_with_the_reason():
    examples = _planted()
    examples.converted[:] = 0
    model, report = train_conversion(examples, ["a", "b", "c", "d"], ["s"], progress=False)
    assert model is None and "no purchases" in report.skipped


def test_the_head_is_saved_and_loaded_with_the_hybrid(tmp_path):
    from model.hybrid.features import feature_names
    from model.hybrid.item_stats import ItemStats
    from model.hybrid.recommender import HybridRecommender
    from model.hybrid.saved import load_hybrid, save_hybrid
    from tests.unit.model.test_hybrid import Fixed, _request

    sources = {"session-knn-stream": Fixed(["a", "b", "c"])}
    hybrid = HybridRecommender(sources, ItemStats())
    featured = hybrid.candidates([_request()])[0]
    examples = _planted(n=400, candidates=3)
    width = len(feature_names(list(sources)))
    examples.features = np.repeat(examples.features[..., :1], width, axis=-1) * np.linspace(0.5, 1.5, width)
    hybrid.ranker, _ = fit_listwise_for_test(examples, width)
    hybrid.conversion, _ = train_conversion(examples, hybrid.feature_names, list(sources),
                                            config=RankerConfig(max_epochs=2), progress=False)
    loaded = load_hybrid(save_hybrid(hybrid, tmp_path / "h"), sources, None)
    assert loaded.conversion is not None
    assert np.allclose(loaded.purchase_logits(featured), hybrid.purchase_logits(featured))


def fit_listwise_for_test(examples: ConversionExamples, width: int):
    from model.hybrid.ranker import train_ranker

    labels = examples.converted.argmax(axis=1).astype(np.int32)
    return train_ranker(examples.features, examples.mask, labels, [f"f{j}" for j in range(width)],
                        RankerConfig(max_epochs=1), progress=False)
