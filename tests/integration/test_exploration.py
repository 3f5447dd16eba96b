"""The exploration budget against a real Redis: young items of the trigger's category take the budgeted slots, old
items never do, clicks on a shown young item make it chosen over one never clicked, and a second worker (or a
restarted one) agrees on what is young."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from model.exploration import YoungItemExploration, exploration_positions
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from streamrec.events import PageView
from streamrec.session_store import SessionStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Listed(Recommender):
    """Always the same old items, best first."""

    name = "listed"

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        return [ScoredItem(f"old{i}", 1.0 - i / 100) for i in range(request.k)]


def _view(user: str, item: str, at: datetime, category: str = "shoes") -> PageView:
    return PageView(user_id=user, session_id=f"{user}-s", item_id=item, category=category, ts=at)


def _request(user: str, trigger: str, at: datetime, k: int = 5) -> RecommendationRequest:
    return RecommendationRequest(user, k, trigger_item=trigger, now_ms=int(at.timestamp() * 1000))


def test_slots_are_every_fifth_at_share_one_fifth_and_never_the_first():
    assert exploration_positions(0.2, 5) == [4]
    assert exploration_positions(0.2, 20) == [4, 9, 14, 19]
    assert exploration_positions(0.1, 5) == []  # the budget lies beyond a 5-item list
    assert exploration_positions(0.5, 1) == [] and exploration_positions(0.0, 20) == []


def test_young_items_of_the_category_take_the_budgeted_slot_and_old_ones_never(settings, redis_client):
    store = SessionStore(redis_client, settings)
    explorer = YoungItemExploration(Listed(), redis_client, settings.key_prefix, share=0.2, young_hours=24)
    history = [_view("a", f"old{i}", T0 + i * timedelta(minutes=1)) for i in range(10)]
    history += [_view("b", "shirt-new", T0 + 30 * HOUR, category="shirts"),
                _view("b", "shoe-new", T0 + 30 * HOUR), _view("c", "aged", T0 + timedelta(minutes=20))]
    explorer.observe(history, store.apply_batch(history))
    answer = explorer.recommend(_request("u", "old1", T0 + 31 * HOUR))
    assert [s.item_id for s in answer] == ["old0", "old1", "old2", "old3", "shoe-new"]  # a shoe: the trigger's
    later = explorer.recommend(_request("u", "old1", T0 + 60 * HOUR))  # a day and more on, nothing is young
    assert [s.item_id for s in later] == ["old0", "old1", "old2", "old3", "old4"]


def test_clicks_steer_the_draws_and_a_second_worker_agrees_on_what_is_young(settings, redis_client):
    store = SessionStore(redis_client, settings)
    first = YoungItemExploration(Listed(), redis_client, settings.key_prefix, share=0.2, seed=1)
    old = [_view("a", f"old{i}", T0 - 48 * HOUR) for i in range(6)]  # two days before: not young
    first.observe(old, store.apply_batch(old))
    launched = [_view("z", "liked", T0 + HOUR), _view("z", "ignored", T0 + HOUR)]
    first.observe(launched, store.apply_batch(launched))
    shown: dict[str, int] = {"liked": 0, "ignored": 0}
    for n in range(60):
        user, at = f"user{n}", T0 + 2 * HOUR + n * timedelta(minutes=1)
        item = first.recommend(_request(user, "old0", at))[4].item_id
        shown[item] += 1
        if item == "liked":  # users open "liked" when shown it, never "ignored"
            click = [_view(user, "liked", at + timedelta(minutes=2))]
            first.observe(click, store.apply_batch(click))
    assert shown["liked"] > 2 * shown["ignored"]  # Thompson sampling moved to the item that gets clicks
    # A restarted worker: nothing in memory, and "old0".."old5" seen again now must not read as young.
    second = YoungItemExploration(Listed(), redis_client, settings.key_prefix, share=0.2, seed=2)
    again = [_view("q", f"old{i}", T0 + 3 * HOUR) for i in range(6)] + [_view("q", "liked", T0 + 3 * HOUR)]
    second.observe(again, store.apply_batch(again))
    picks = {second.recommend(_request(f"v{n}", "old0", T0 + 3 * HOUR))[4].item_id for n in range(20)}
    assert picks == {"liked"}  # young by the first worker's record; the old items were not taken for new


def test_the_worker_serves_the_budget_when_the_setting_asks_for_it_and_not_otherwise(settings, redis_client, tmp_path):
    from model.serving import make_recommender_source

    off = make_recommender_source(settings.model_copy(update={"model_dir": tmp_path, "exploration_share": 0.0}),
                                  redis_client)
    on = make_recommender_source(settings.model_copy(update={"model_dir": tmp_path, "exploration_share": 0.2}),
                                 redis_client)
    assert not isinstance(off.current(), YoungItemExploration)
    served = on.current()
    assert isinstance(served, YoungItemExploration) and served.share == 0.2
    assert served.name == off.current().name  # reports name the model, not the wrapper


def test_nothing_is_young_before_the_stream_was_watched_for_a_young_span(settings, redis_client):
    store = SessionStore(redis_client, settings)
    explorer = YoungItemExploration(Listed(), redis_client, settings.key_prefix, share=0.2, young_hours=24)
    # A fresh deployment's first hours: every item is seen for the first time, none of them is known to be new.
    first_day = [_view("a", f"old{i}", T0 + i * HOUR) for i in range(6)] + [_view("b", "unknown-age", T0 + 20 * HOUR)]
    explorer.observe(first_day, store.apply_batch(first_day))
    answer = explorer.recommend(_request("u", "old1", T0 + 21 * HOUR))
    assert [s.item_id for s in answer] == ["old0", "old1", "old2", "old3", "old4"]
    later = [_view("c", "launched", T0 + 30 * HOUR)]  # first seen after a day of watching: new
    explorer.observe(later, store.apply_batch(later))
    assert explorer.recommend(_request("u", "old1", T0 + 31 * HOUR))[4].item_id == "launched"
