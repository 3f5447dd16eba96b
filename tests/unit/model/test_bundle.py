"""Versioned bundles: a saved and reloaded bundle scores exactly like the one trained; the newest complete one wins."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.bundle import BundleConfig, ModelBundle
from model.bundle_paths import list_bundles, newest_bundle
from model.interactions import events_to_frame
from model.ranking.features import RankerConfig
from model.recommender import RecommendationRequest
from model.training import TrainingConfig, train_bundle
from model.two_tower.recommender import TwoTowerRecommender
from model.two_tower.towers import TwoTowerConfig
from producers.simulator import simulate
from streamrec.session_store import SessionContext


@pytest.fixture(scope="module")
def bundle():
    _, events = simulate(8_000, seed=5)
    config = TrainingConfig(two_tower=TwoTowerConfig(embedding_dim=8, hidden_units=16, batch_size=256, epochs=2),
                            ranker=RankerConfig(epochs=1, hidden_units=(16,)))
    return train_bundle(events_to_frame(events), config, progress=False)


def _requests(bundle: ModelBundle) -> list[RecommendationRequest]:
    users = list(bundle.user_history)[:20]
    session = SessionContext(user_id="stranger", session_id="s", recent_items=tuple(bundle.spec.items.tokens[1:4]))
    return [RecommendationRequest(u, 10, now_ms=1_767_600_000_000) for u in users] + [
        RecommendationRequest("stranger", 10, context=session, now_ms=1_767_600_000_000)]


def test_round_trip_gives_identical_scores(bundle, tmp_path):
    assert bundle.ranker is not None
    path = bundle.save(tmp_path)
    loaded = ModelBundle.load(path)
    assert loaded.version == bundle.version == path.name
    # Hyperparameters and vocabularies come back as trained.
    assert loaded.config.model_dump() == bundle.config.model_dump()
    assert np.array_equal(loaded.item_vectors, bundle.item_vectors)
    before = TwoTowerRecommender(bundle).recommend_batch(_requests(bundle))
    after = TwoTowerRecommender(loaded).recommend_batch(_requests(loaded))
    assert before == after and all(before)
    assert json.loads((path / "metrics.json").read_text())["two_tower"]["train_examples"] > 0


def test_a_bundle_loads_as_the_two_tower_kind_with_or_without_its_manifest(bundle, tmp_path):
    from model.bundle_paths import MANIFEST, read_manifest
    from model.saved_models import load_recommender, publish_model

    path = bundle.save(tmp_path)
    assert read_manifest(path).kind == "two-tower" and read_manifest(path).version == bundle.version
    expected = TwoTowerRecommender(bundle).recommend_batch(_requests(bundle))
    loaded = load_recommender(path)
    assert isinstance(loaded, TwoTowerRecommender) and loaded.version == path.name
    assert loaded.recommend_batch(_requests(bundle)) == expected
    # Saved through the Recommender interface, as any other kind.
    republished = load_recommender(publish_model(TwoTowerRecommender(bundle), tmp_path / "other"))
    assert republished.recommend_batch(_requests(bundle)) == expected
    # A bundle saved before manifests existed (config.json only) is still a two-tower bundle.
    (path / MANIFEST).unlink()
    assert newest_bundle(tmp_path) == path
    assert load_recommender(path).recommend_batch(_requests(bundle)) == expected


def test_newest_complete_bundle_wins(bundle, tmp_path):
    first = bundle.save(tmp_path)
    second_config = BundleConfig.model_validate(bundle.config.model_dump() | {"version": ""})
    second = ModelBundle(second_config, bundle.towers, bundle.item_vectors, bundle.index, bundle.ranker,
                         bundle.user_history).save(tmp_path)
    assert second.name > first.name
    assert newest_bundle(tmp_path) == second
    # A bundle still being written (no config yet) is invisible.
    (tmp_path / "99999999T000000000Z").mkdir()
    (tmp_path / ".partial-x").mkdir()
    assert newest_bundle(tmp_path) == second
    assert list_bundles(tmp_path) == [first, second]
    assert newest_bundle(tmp_path / "missing") is None


class _Named:
    def __init__(self, name: str) -> None:
        self.name, self.version = name, name


def test_serving_source_swaps_only_between_checks_and_skips_broken_bundles(tmp_path):
    from model.serving import BundleRecommenderSource

    now = [0.0]
    loads: list[str] = []

    def loader(path, fallback):
        loads.append(path.name)
        if path.name.endswith("broken"):
            raise ValueError("corrupt weights")
        return _Named(path.name)

    def publish(name: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")

    fallback = _Named("baseline")
    source = BundleRecommenderSource(tmp_path, fallback, reload_interval_s=10, loader=loader, clock=lambda: now[0])
    assert source.current() is fallback  # no bundle yet
    publish("20260101T000000000Z")
    assert source.current() is fallback  # not before the interval is up
    now[0] = 10
    assert source.current().name == "20260101T000000000Z"
    publish("20260102T000000000Zbroken")
    now[0] = 20
    assert source.current().name == "20260101T000000000Z"  # the broken one is skipped, the old model stays
    now[0] = 30
    source.current()
    assert loads.count("20260102T000000000Zbroken") == 1  # and not retried every interval
    assert source.reloads == 1


def test_the_gru_history_encoder_reads_order_and_round_trips(tmp_path):
    """The session GRU as the query tower's history reader: it tells a session from its reverse (the mean cannot),
    and a saved bundle scores as trained (the serving path's compiled query tower included)."""
    _, events = simulate(6_000, seed=9)
    config = TrainingConfig(two_tower=TwoTowerConfig(embedding_dim=8, hidden_units=16, batch_size=256, epochs=2,
                                                     history_encoder="gru", encoder_units=8), ranker=None)
    trained = train_bundle(events_to_frame(events), config, progress=False)
    model = TwoTowerRecommender(trained)
    items = tuple(trained.spec.items.tokens[1:5])

    def query(order: tuple[str, ...]) -> np.ndarray:
        context = SessionContext(user_id="stranger", session_id="s", recent_items=order)
        return model.query_vector(RecommendationRequest("stranger", 10, context=context))

    assert not np.allclose(query(items), query(items[::-1]), atol=1e-4)
    path = trained.save(tmp_path)
    loaded = TwoTowerRecommender(ModelBundle.load(path))
    assert loaded.bundle.config.two_tower.history_encoder == "gru"
    assert np.allclose(loaded.query_vector(RecommendationRequest("stranger", 10, context=SessionContext(
        user_id="stranger", session_id="s", recent_items=items))), query(items), atol=1e-6)
    assert loaded.recommend_batch(_requests(loaded.bundle)) == model.recommend_batch(_requests(trained))


def test_a_background_reload_keeps_serving_the_old_model_until_the_new_one_is_ready(tmp_path):
    """No batch waits for a load: while a slow loader runs, `current()` answers at once with the model served."""
    import threading
    import time as clock_time

    from model.serving import BundleRecommenderSource

    now = [0.0]
    release = threading.Event()

    def loader(path, fallback):
        if path.name.startswith("20260102"):
            release.wait(10)
        return _Named(path.name)

    def publish(name: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")

    publish("20260101T000000000Z")
    source = BundleRecommenderSource(tmp_path, _Named("baseline"), reload_interval_s=10, loader=loader,
                                     clock=lambda: now[0], background=True)
    assert source.current().name == "20260101T000000000Z"  # the first model is there before the first batch
    publish("20260102T000000000Z")
    now[0] = 10
    started = clock_time.monotonic()
    assert source.current().name == "20260101T000000000Z"  # the load has started, the old model answers
    now[0] = 20
    assert source.current().name == "20260101T000000000Z"  # still loading: no second load is started
    assert clock_time.monotonic() - started < 1.0
    release.set()
    source._loading.join(5)
    assert source.current().name == "20260102T000000000Z" and source.reloads == 2


def test_serving_traces_its_model_calls_once_whatever_the_batch_size(bundle):
    """The query tower and the ranker are `tf.function`s with a free batch dimension: batches of 1, 7 and 21
    triggers reuse one trace (a retrace per new size would cost a compile in the poll loop). The TensorFlow
    query path is asked for: serving's default query tower is the NumPy one, which has nothing to trace."""
    model = TwoTowerRecommender(bundle, use_ranker=True, numpy_query=False)
    requests = _requests(bundle)
    for size in (1, 7, len(requests), 1):
        assert all(model.recommend_batch(requests[:size]))
    assert model.encode._encode.experimental_get_tracing_count() == 1
    assert model.rank._score.experimental_get_tracing_count() == 1


def test_a_model_change_settles_the_heap_between_batches_and_the_old_model_is_collected(tmp_path):
    import gc
    import weakref

    from model.serving import BundleRecommenderSource

    class Cyclic(_Named):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.me = self  # a reference cycle: only the cyclic collector frees it
            self.state = [{"item": j} for j in range(1000)]

    def publish(name: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")

    now = [0.0]
    publish("20260101T000000000Z")
    source = BundleRecommenderSource(tmp_path, _Named("baseline"), reload_interval_s=10,
                                     loader=lambda path, fallback: Cyclic(path.name), clock=lambda: now[0])
    try:
        first = weakref.ref(source.current())
        assert gc.get_freeze_count() > 1000  # the served model's objects are frozen: collections skip them
        publish("20260102T000000000Z")
        now[0] = 10
        assert source.current().name == "20260102T000000000Z"
        assert first() is None  # unfrozen and collected when the new model was settled, not frozen for good
    finally:
        gc.unfreeze()
