"""The model registry: named factories fitted on the training frame; what cannot be built is skipped with why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import measurement.evaluation  # noqa: F401  (registers the oracle)
from measurement.evaluation.offline_models import build_models
from model.recommender import RecommendationRequest
from model.registry import ModelUnavailable, get_spec, model_names

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def train_frame() -> pd.DataFrame:
    rows = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u3", "a"), ("u3", "c")]
    return pd.DataFrame(
        [{"event_id": f"e{i}", "user_id": u, "session_id": u, "ts": T0 + timedelta(minutes=i),
          "event_type": "page_view", "kind": "product", "item_id": item, "category": None, "brand": None,
          "price": None} for i, (u, item) in enumerate(rows)]
    )


def test_the_side_by_side_models_are_registered():
    assert {"popularity", "item-cosine", "session-knn", "session-cooccurrence", "two-tower", "two-tower-ranker",
            "oracle"} <= set(model_names())


def test_unknown_and_unbuildable_models_are_skipped_with_the_reason():
    with pytest.raises(ModelUnavailable, match="known: popularity"):
        get_spec("no-such-model")
    built = build_models(["popularity", "oracle", "no-such-model"], train_frame())
    assert list(built.models) == ["popularity"]
    assert "planted truth" in built.skipped["oracle"]
    assert "unknown model" in built.skipped["no-such-model"]


def test_a_built_model_is_fitted_on_the_training_frame():
    built = build_models(["popularity"], train_frame())
    ranked = built.models["popularity"].recommend(RecommendationRequest(user_id="x", k=2))
    assert [s.item_id for s in ranked][0] == "a"  # the most used training item
