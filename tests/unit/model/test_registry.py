"""The model registry: named factories fitted on the training frame; what cannot be built is skipped with why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import measurement.evaluation  # noqa: F401  (registers the oracle)
from measurement.evaluation.offline_models import build_models
from model.recommender import RecommendationRequest
from model.registry import ModelUnavailable, get_spec, model_names
from streamrec.session_store import SessionContext

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


def test_the_session_gru_is_registered_and_fitted_on_the_training_frame():
    from model.registry import ModelContext
    from model.session_gru.recommender import SessionModelRecommender

    assert "session-gru" in model_names()
    model = get_spec("session-gru").build(ModelContext(train=train_frame(), epochs=1))
    assert isinstance(model, SessionModelRecommender)
    assert model.config.epochs == 1  # the context's epoch count wins over the model's default
    assert sorted(model.items) == ["a", "b", "c"]
    context = SessionContext(user_id="u1", session_id="u1", recent_items=("a",))
    ranked = model.recommend(RecommendationRequest(user_id="u1", k=2, context=context))
    assert len(ranked) == 2 and {s.item_id for s in ranked} <= {"a", "b", "c"}


def test_a_named_model_is_fitted_and_published_for_the_worker(tmp_path):
    from model.registry import fit_and_publish
    from model.saved_models import load_recommender

    path = fit_and_publish("popularity", train_frame(), tmp_path)
    loaded = load_recommender(path)
    assert (loaded.name, loaded.version) == ("popularity", path.name)
    assert loaded.recommend(RecommendationRequest(user_id="x", k=1))[0].item_id == "a"
    with pytest.raises(ModelUnavailable, match="not fitted offline"):
        fit_and_publish("session-cooccurrence", train_frame(), tmp_path)
