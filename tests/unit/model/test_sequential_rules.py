"""Sequential rules: what sessions opened after an item, by direction and distance, from the newest session item."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from model.baselines.sequential_rules import SequentialRulesRecommender
from model.recommender import RecommendationRequest
from streamrec.session_store import SessionContext


def _frame(sessions: dict[str, list[str]], kind: str = "product") -> pd.DataFrame:
    rows = []
    for n, (session, items) in enumerate(sessions.items()):
        for at, item in enumerate(items):
            rows.append({"event_id": f"{session}-{at}", "user_id": f"u{session}", "session_id": session,
                         "ts": datetime.fromtimestamp(n * 3600 + at * 10, UTC), "event_type": "page_view",
                         "kind": kind, "item_id": item, "category": None, "brand": None, "price": None})
    return pd.DataFrame(rows)


def _request(recent: tuple[str, ...], exclude: frozenset[str] = frozenset(), k: int = 10,
             kind: str = "product") -> RecommendationRequest:
    context = SessionContext(user_id="u", session_id="s", recent_items=recent, page_views=len(recent))
    return RecommendationRequest("u", k, kind=kind, context=context, exclude=exclude, trigger_item=recent[0])


def test_rules_keep_direction_and_weigh_by_distance():
    model = SequentialRulesRecommender().fit(_frame({"1": ["a", "b", "c"], "2": ["a", "b", "c"], "3": ["a", "d"]}))
    scored = {s.item_id: s.score for s in model.recommend(_request(("a",)))}
    # b follows a directly twice (1 + 1), c two steps after a twice (1/2 + 1/2), d directly once.
    assert scored == {"b": 2.0, "c": 1.0, "d": 1.0}
    # Nothing ever came after c: its rules are empty, and c -> a is not a rule of b either.
    assert [s.item_id for s in model.recommend(_request(("b",)))] == ["c"]
    assert model.similar_items("c", 5) == []


def test_steps_bound_how_far_back_a_rule_reaches_and_an_item_is_no_rule_of_itself():
    model = SequentialRulesRecommender(steps=2).fit(_frame({"1": ["a", "b", "a", "c", "d"]}))
    assert {s.item_id for s in model.similar_items("a", 10)} == {"b", "c", "d"}
    # b -> a (next) and b -> c (two on); d is three on, past the steps.
    assert {s.item_id: s.score for s in model.similar_items("b", 10)} == {"a": 1.0, "c": 0.5}


def test_the_newest_session_item_with_rules_is_the_seed_and_exclusions_are_dropped():
    model = SequentialRulesRecommender().fit(_frame({"1": ["a", "b"], "2": ["a", "c"], "3": ["x", "y"]}))
    # "new" has no rules: the newest earlier item that has some (a) answers, minus the excluded b.
    assert [s.item_id for s in model.recommend(_request(("new", "a", "x"), exclude=frozenset({"b"})))] == ["c"]
    assert model.recommend(_request(("new", "other"))) == []
    assert [s.item_id for s in model.recommend(_request(("a",), k=1))] == ["b"]


def test_kinds_keep_rules_apart():
    frame = pd.concat([_frame({"1": ["a", "b"]}), _frame({"2": ["a", "t"]}, kind="tool")], ignore_index=True)
    model = SequentialRulesRecommender().fit(frame)
    assert [s.item_id for s in model.recommend(_request(("a",)))] == ["b"]
    assert [s.item_id for s in model.recommend(_request(("a",), kind="tool"))] == ["t"]


def test_a_saved_model_loads_with_the_same_rules(tmp_path):
    from model.saved_models import load_recommender

    model = SequentialRulesRecommender(steps=3, neighbours=2).fit(
        _frame({"1": ["a", "b", "c", "d"], "2": ["a", "c"], "3": ["b", "d"]}))
    loaded = load_recommender(model.save(tmp_path / "sr"))
    assert isinstance(loaded, SequentialRulesRecommender)
    assert (loaded.steps, loaded.neighbours) == (3, 2)
    for seed in ("a", "b", "c"):
        assert loaded.recommend(_request((seed,))) == model.recommend(_request((seed,)))
    assert len(model.similar_items("a", 10)) == 2
