"""The worker serves the newest saved model of any kind and hot-reloads a new one mid-stream, losing and repeating
nothing."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from model.exploration import YoungItemExploration, explored
from model.interactions import events_to_frame
from model.ranking.features import RankerConfig
from model.training import TrainingConfig, train_bundle
from model.two_tower.towers import TwoTowerConfig
from producers.simulator import simulate
from streamrec.notifications import decode_notification
from tests.pipeline_helpers import (
    expected_triggers,
    read_notifications_when_done,
    run_one_worker_over,
    seed_catalogue,
    send,
    start_worker,
)

pytestmark = pytest.mark.integration


def test_hot_reload_during_streaming_loses_nothing(settings):
    world, events = simulate(1200, seed=21)
    config = TrainingConfig(two_tower=TwoTowerConfig(embedding_dim=8, hidden_units=16, batch_size=128, epochs=2),
                            ranker=RankerConfig(epochs=1, hidden_units=(16,)))
    bundle = train_bundle(events_to_frame(events), config, progress=False)
    settings = settings.model_copy(update={"model_reload_interval_s": 0.2})
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    half = len(events) // 2

    running = start_worker(settings)  # no bundle yet: the streaming baseline serves
    try:
        send(settings, events[:half])
        deadline = time.monotonic() + 60
        while running.worker.committed_records < half and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running.worker.committed_records == half
        bundle.save(settings.model_dir)  # appears while the worker is streaming
        quarter = half + len(events) // 4
        send(settings, events[half:quarter])  # the worker loads it in the background meanwhile
        source = running.worker.pipeline.source
        deadline = time.monotonic() + 60
        while source.loaded_path is None and time.monotonic() < deadline:
            time.sleep(0.1)
        send(settings, events[quarter:])
        records = read_notifications_when_done(settings, [running], len(events))
    finally:
        running.shutdown()

    notifications = [decode_notification(r.value) for r in records]
    per_trigger = Counter(n.trigger_event_id for n in notifications)
    assert max(per_trigger.values()) == 1  # nothing processed twice across the swap
    assert set(per_trigger) <= triggers
    assert len(triggers - set(per_trigger)) < 0.1 * len(triggers)  # nothing lost
    assert running.worker.committed_records == len(events)
    source = running.worker.pipeline.source
    assert source.reloads == 1 and source.loaded_path.name == bundle.version

    first_ids = {e.event_id for e in events[:half]}
    before = [n for n in notifications if n.trigger_event_id in first_ids]
    after = [n for n in notifications if n.trigger_event_id not in first_ids]
    assert before and {n.model_name for n in before} == {"session-knn-stream"}  # the streaming default
    served = [n for n in after if n.model_name.startswith("two-tower")]
    assert served and {n.model_version for n in served} == {bundle.version}
    # Tool triggers stay with the streaming baseline, which kept learning from the stream.
    assert all(i.kind == "tool" for n in after if n.trigger_event_type == "task_completed" for i in n.items)


def test_worker_serves_a_saved_session_gru_from_the_model_dir(settings):
    from model.saved_models import publish_model
    from model.session_gru.recommender import SessionModelRecommender

    world, events = simulate(1200, seed=23)
    model = SessionModelRecommender(embedding_dim=8, hidden_units=8, batch_size=128, epochs=1)
    path = publish_model(model.fit(events_to_frame(events)), settings.model_dir)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)

    running, records = run_one_worker_over(settings, events)  # the saved model is there before the first batch

    notifications = [decode_notification(r.value) for r in records]
    assert running.worker.pipeline.source.loaded_path == path
    products = [n for n in notifications if n.trigger_event_type != "task_completed"]
    assert products and {(n.model_name, n.model_version) for n in products} == {("session-gru", path.name)}
    assert len(triggers - {n.trigger_event_id for n in notifications}) < 0.1 * len(triggers)  # nothing lost
    # Tools go to the streaming baseline (the session GRU knows products only).
    assert all(i.kind == "tool" for n in notifications if n.trigger_event_type == "task_completed" for i in n.items)


def test_target_users_scores_users_latest_redis_context(settings, redis_client):
    from model.targeting import target_users_from_store
    from model.two_tower.recommender import TwoTowerRecommender
    from streamrec.session_store import SessionStore

    world, events = simulate(3000, seed=8)
    config = TrainingConfig(two_tower=TwoTowerConfig(embedding_dim=8, hidden_units=16, batch_size=128, epochs=3),
                            ranker=None)
    model = TwoTowerRecommender(train_bundle(events_to_frame(events), config, progress=False))
    store = SessionStore(redis_client, settings)
    for start in range(0, len(events), 500):
        store.apply_batch(events[start : start + 500])
    bought = [e for e in events if e.type == "purchase"]
    known = set(store.known_users())

    def share(user_id: str, category: str) -> float:
        context = store.latest_context(user_id)
        return context.categories.get(category, 0) / max(1, sum(context.categories.values()))

    # The five most bought items (ones the small model has seen enough of): each one's chosen users are known, not
    # its buyers, and on average they lean to the item's category more than users in general do.
    chosen_share, general_share = [], []
    for item, _ in Counter(e.item_id for e in bought).most_common(5):
        users = target_users_from_store(model, store, item, k=10)
        assert len(users) == 10
        assert {u.user_id for u in users} <= known
        assert not {u.user_id for u in users} & {e.user_id for e in bought if e.item_id == item}
        category = next(e.category for e in bought if e.item_id == item)
        chosen_share.append(sum(share(u.user_id, category) for u in users) / 10)
        general_share.append(sum(share(u, category) for u in known) / len(known))
    assert sum(chosen_share) > 1.1 * sum(general_share)  # 1.17 to 2.45 x over simulation seeds 8 to 11


def test_worker_serves_a_saved_hybrid_with_its_own_streaming_sources(settings):
    """The hybrid trained through the pipeline, published, loaded by the worker with the worker's streaming sources
    (one object each, observed once), answering products; tools stay with the streaming fallback."""
    from consumers.training.hybrid_training import publish_hybrid

    world, events = simulate(2400, seed=29)
    path, trained = publish_hybrid(events_to_frame(events[:1200]), settings.model_dir, settings, log_events=600,
                                   neural=False, progress=False)
    assert trained.examples.next_in_candidates > 50 and trained.report.best_epoch >= 1
    seed_catalogue(settings, world)
    later = events[1200:]
    triggers = expected_triggers(later, settings.trigger_every_nth_page_view)

    running, records = run_one_worker_over(settings, later)

    notifications = [decode_notification(r.value) for r in records]
    source = running.worker.pipeline.source
    assert source.loaded_path == path
    served = source.current()
    assert isinstance(served, YoungItemExploration)  # the exploration budget is on by default, around the hybrid
    served = explored(served)
    assert served.name == "hybrid" and served.ranker is not None
    answers = served.fallback.fallback  # tools to the tool transitions, topped up by co-occurrence
    assert answers.tools.name == "tool-transitions"
    fallback_parts = {id(served.fallback.model), id(answers.rest)}
    assert {id(served.sources["session-knn-stream"]), id(served.sources["session-cooccurrence"])} == fallback_parts
    products = [n for n in notifications if n.trigger_event_type != "task_completed"]
    assert products and {(n.model_name, n.model_version) for n in products} == {("hybrid", path.name)}
    assert len(triggers - {n.trigger_event_id for n in notifications}) < 0.1 * len(triggers)  # nothing lost
    assert all(i.kind == "tool" for n in notifications if n.trigger_event_type == "task_completed" for i in n.items)
