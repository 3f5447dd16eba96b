"""Two-tower retrieval on a small simulated shop: it converges, beats popularity, serves fast paths exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.baselines.popularity import PopularityRecommender
from model.holdout_scoring import held_out_purchases, score_next_items, score_users
from model.interactions import events_to_frame
from model.metrics import metric_value
from model.ranking.features import RankerConfig
from model.recommender import RecommendationRequest
from model.scoring import QueryEncoder
from model.training import TrainingConfig, train_bundle
from model.two_tower.examples import query_inputs, retrieval_examples
from model.two_tower.recommender import TwoTowerRecommender
from model.two_tower.towers import TwoTowerConfig
from producers.simulator import simulate
from streamrec.events import TOOL
from streamrec.session_store import SessionContext

ITEM_EVENTS = ("page_view", "add_to_cart", "purchase")


@pytest.fixture(scope="module")
def trained():
    world, events = simulate(20_000, seed=3)
    frame = events_to_frame(events).sort_values("ts", kind="stable")
    cut = frame["ts"].iloc[int(len(frame) * 0.8)]
    train, test = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
    config = TrainingConfig(two_tower=TwoTowerConfig(embedding_dim=16, hidden_units=32, batch_size=256, epochs=6),
                            ranker=RankerConfig(epochs=2))
    bundle = train_bundle(train, config, catalogue=world.catalogue_frame(), progress=False)
    return world, train, test, bundle


def test_training_converges(trained):
    _, _, _, bundle = trained
    history = bundle.metrics["two_tower"]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert max(history["validation_recall"]) > 0.2  # next item in the top 100 of ~2,000 items


def test_beats_popularity_on_later_interactions(trained):
    _, train, test, bundle = trained
    popularity = PopularityRecommender().fit(train)
    model = TwoTowerRecommender(bundle, fallback=popularity, use_ranker=False)
    # At trigger moments (session context from the stream), later in time than all training data.
    frame = pd.concat([train, test])
    since = test["ts"].min()
    ours = score_next_items("ours", model, frame, since, ks=(100,), max_events=1500, progress=False)
    baseline = score_next_items("pop", popularity, frame, since, ks=(100,), max_events=1500, progress=False)
    assert metric_value(ours, "HR", 100) > metric_value(baseline, "HR", 100) * 1.1
    # Per user over the whole later period (no session context): at least as good as popularity.
    held = held_out_purchases(train, test, test_events=ITEM_EVENTS)
    ours = score_users("ours", model, held, ks=(100,), progress=False)
    baseline = score_users("pop", popularity, held, ks=(100,), progress=False)
    assert metric_value(ours, "recall", 100) >= metric_value(baseline, "recall", 100) * 0.95


def test_serving_query_encoder_matches_keras_model(trained):
    _, train, _, bundle = trained
    examples = retrieval_examples(train, bundle.spec)
    inputs = {k: v[:300] for k, v in examples.queries.items()}
    served = QueryEncoder(bundle.towers.query, bundle.spec)(inputs)
    keras_scores = bundle.towers.query.predict(inputs, verbose=0)
    assert np.abs(served - keras_scores).max() < 1e-5
    # Same for a batch of one (the signature has a free batch dimension, no retracing needed).
    one = {k: v[:1] for k, v in inputs.items()}
    assert np.abs(QueryEncoder(bundle.towers.query, bundle.spec)(one) - keras_scores[:1]).max() < 1e-5


def test_recommendations_respect_exclusions_and_trigger(trained):
    world, train, _, bundle = trained
    model = TwoTowerRecommender(bundle)
    user = train["user_id"].iloc[-1]
    first = [s.item_id for s in model.recommend(RecommendationRequest(user, 10))]
    assert len(first) == 10
    exclude = frozenset(first[:5])
    again = [s.item_id for s in model.recommend(RecommendationRequest(user, 10, exclude=exclude,
                                                                      trigger_item=first[5]))]
    assert len(again) == 10 and not set(again) & (exclude | {first[5]})
    assert all(item in world.product_ids for item in again)


def test_cold_start_user_gets_recommendations(trained):
    world, _, _, bundle = trained
    model = TwoTowerRecommender(bundle)
    # Unknown user, empty session: the fallback answers.
    cold = model.recommend(RecommendationRequest("never-seen-user", 5))
    assert len(cold) == 5
    # Unknown user who viewed known items in this session: the model answers from the session.
    session = SessionContext(user_id="never-seen-user", session_id="s1", recent_items=tuple(world.product_ids[:3]),
                             page_views=3, categories={world.category_names[world.product_category[0]]: 3})
    warm = model.recommend(RecommendationRequest("never-seen-user", 5, context=session, now_ms=1_767_600_000_000))
    assert len(warm) == 5 and [s.item_id for s in warm] != [s.item_id for s in cold]
    # Tools are the fallback's job: no crash, no products offered as tools.
    assert all(s.item_id not in world.product_ids for s in model.recommend(RecommendationRequest("u", 3, kind=TOOL)))


def test_unknown_items_get_attribute_based_embeddings(trained):
    world, _, _, bundle = trained
    model = TwoTowerRecommender(bundle)
    category = world.category_names[world.product_category[0]]
    added = model.add_items(["brand-new-item"], [category], [world.product_brand[0]], [float(world.product_price[0])])
    assert added == 1
    neighbours = model.similar_items("brand-new-item", 20)
    assert len(neighbours) == 20
    # Its nearest neighbours are mostly from its category: the attributes carry meaning.
    same = [world.category_names[world.product_category[world.product_ids.index(s.item_id)]] == category
            for s in neighbours if s.item_id in world.product_ids]
    assert np.mean(same) > 0.5


def test_query_features_are_the_same_for_training_and_serving(trained):
    _, _, _, bundle = trained
    context = SessionContext(user_id="u00001", session_id="s", recent_items=("p00001", "zzz-unknown"),
                             page_views=2, started_ms=0, last_ms=60_000)
    inputs = query_inputs(bundle.spec, ["u00001"], [context], [pd.Timestamp("2026-01-05", tz="UTC").value // 10**6])
    assert inputs["history"][0, 0] == bundle.spec.items.get("p00001")
    assert (inputs["history"][0, 1:] == 0).all()  # unknown items are padding, not a made-up id


def test_items_first_seen_in_the_stream_become_recommendable(trained):
    from streamrec.events import PageView

    world, _, _, bundle = trained
    model = TwoTowerRecommender(bundle)
    category = world.category_names[world.product_category[1]]
    view = PageView(user_id="u1", session_id="s", item_id="launched-today", category=category,
                    brand=world.product_brand[1], price=float(world.product_price[1]))
    model.observe([view], [SessionContext(user_id="u1", session_id="s")])
    assert model.item_vector("launched-today") is not None
    assert model.similar_items("launched-today", 5)
    # A session full of its category can now be offered the new item.
    same = [p for p, c in zip(world.product_ids, world.product_category, strict=True)
            if world.category_names[c] == category][:5]
    session = SessionContext(user_id="x", session_id="s", recent_items=tuple(same), categories={category: 5})
    ranked = [s.item_id for s in model.recommend(RecommendationRequest("x", 500, context=session))]
    assert "launched-today" in ranked


def test_training_progress_goes_to_stderr_never_stdout(capsys):
    """`--json` commands print only JSON on stdout; the epoch lines once went there and broke `replay --json`."""
    _, events = simulate(1500, seed=4)
    config = TrainingConfig(two_tower=TwoTowerConfig(embedding_dim=8, hidden_units=8, batch_size=256, epochs=2),
                            ranker=None)
    train_bundle(events_to_frame(events), config, progress=True)
    captured = capsys.readouterr()
    assert "two-tower epoch" in captured.err and captured.out == ""


def test_a_products_first_event_puts_it_in_the_served_index_before_any_retrain(trained):
    from streamrec.events import PageView

    world, _, _, bundle = trained
    model = TwoTowerRecommender(bundle)
    category = world.category_names[world.product_category[0]]
    assert model.item_vector("launched-minutes-ago") is None
    first = PageView(user_id="u1", session_id="s1", item_id="launched-minutes-ago", category=category,
                     brand=world.product_brand[0], price=float(world.product_price[0]))
    model.observe([first], [None])
    assert model.item_vector("launched-minutes-ago") is not None
    # A session of its category now retrieves it: it competes with the trained items, not only at a retrain.
    same_category = [p for p, c in zip(world.product_ids, world.product_category, strict=True) if c == 0][:5]
    session = SessionContext(user_id="u1", session_id="s1", recent_items=tuple(same_category), page_views=5,
                             categories={category: 5})
    ranked = model.recommend(RecommendationRequest("u1", 200, context=session, now_ms=1_767_600_000_000))
    assert "launched-minutes-ago" in [s.item_id for s in ranked]
    assert len(bundle.index) + 1 == len(model.index)  # the trained bundle itself is left as it was
