"""Session next-item model: learns a planted next-item rule, serves the Keras scores, saves and loads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.datasets.srgnn import DEFAULT_DATA_ROOT, load_benchmark, session_prefixes
from model.recommender import RecommendationRequest
from model.session_gru.recommender import SessionModelRecommender
from streamrec.session_store import SessionContext

N_ITEMS = 40
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def planted_sessions(n_sessions: int, seed: int) -> tuple[list[list[str]], dict[str, str]]:
    """Random walks where the next item is `rule[last]` 90% of the time (a random item otherwise)."""
    rng = np.random.default_rng(seed)
    rule = {f"i{i}": f"i{j}" for i, j in enumerate(np.random.default_rng(0).permutation(N_ITEMS))}
    sessions = []
    for _ in range(n_sessions):
        items = [f"i{rng.integers(N_ITEMS)}"]
        for _ in range(rng.integers(2, 8)):
            items.append(rule[items[-1]] if rng.random() < 0.9 else f"i{rng.integers(N_ITEMS)}")
        sessions.append(items)
    return sessions, rule


def interactions(sessions: list[list[str]]) -> pd.DataFrame:
    rows = [
        {"session_id": f"s{s}", "item_id": item, "ts": T0 + timedelta(minutes=s, seconds=p), "kind": "product"}
        for s, items in enumerate(sessions)
        for p, item in enumerate(items)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # row order must not matter, ts does


def request(newest_first: tuple[str, ...], k: int = 1, exclude: frozenset[str] = frozenset()):
    context = SessionContext(user_id="u", session_id="s", recent_items=newest_first)
    return RecommendationRequest(user_id="u", k=k, context=context, exclude=exclude)


@pytest.fixture(scope="module")
def trained() -> tuple[SessionModelRecommender, dict[str, str]]:
    sessions, rule = planted_sessions(700, seed=1)
    recommender = SessionModelRecommender(
        embedding_dim=16, hidden_units=16, batch_size=64, epochs=6, learning_rate=0.01, lr_decay=0.8, seed=3
    )
    return recommender.fit(interactions(sessions)), rule


def test_learns_the_planted_rule_and_beats_popularity(trained):
    recommender, rule = trained
    test_sessions, _ = planted_sessions(200, seed=99)
    requests, targets = [], []
    for items in test_sessions:
        cut = len(items) - 1
        requests.append(request(tuple(reversed(items[:cut]))))
        targets.append(items[cut])
    model_hits = np.mean(
        [recs[0].item_id == t for recs, t in zip(recommender.recommend_batch(requests), targets, strict=True)]
    )
    popular = pd.Series([i for s in planted_sessions(700, seed=1)[0] for i in s]).value_counts().index[0]
    popularity_hits = np.mean([popular == t for t in targets])
    assert model_hits > 0.6  # the rule holds 90% of the time; popularity gets ~1/40
    assert model_hits > popularity_hits + 0.4
    # and it follows the rule, not the session's first item
    assert recommender.recommend(request(("i5", "i17")))[0].item_id == rule["i5"]


def test_serving_path_equals_the_keras_model(trained):
    recommender, _ = trained
    requests = [request(("i1", "i2", "i3")), request(("i7",)), request(tuple(f"i{i}" for i in range(30)))]
    served = recommender.scores(requests)
    items, lengths = recommender._encode_contexts(requests)
    keras_scores = np.asarray(recommender.model((items, lengths), training=False))
    np.testing.assert_allclose(served[:, 1:], keras_scores[:, 1:], atol=1e-5)
    assert lengths.tolist() == [3, 1, recommender.config.max_len]  # long sessions keep the newest max_len


def test_recommendations_skip_excluded_items_and_cold_sessions_get_popular_ones(trained):
    recommender, rule = trained
    recs = recommender.recommend(request(("i5",), k=5, exclude=frozenset({rule["i5"]})))
    assert len(recs) == 5 and rule["i5"] not in {r.item_id for r in recs}
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    for cold in (request(("unknown",), k=3), request((), k=3)):
        assert len(recommender.recommend(cold)) == 3


def test_save_load_round_trip_gives_identical_scores(trained, tmp_path: Path):
    recommender, _ = trained
    requests = [request(("i4", "i9")), request(("i11",))]
    loaded = SessionModelRecommender.load(recommender.save(tmp_path / "bundle"))
    np.testing.assert_allclose(loaded.scores(requests), recommender.scores(requests), atol=1e-6)
    assert loaded.recommend(requests[0]) == recommender.recommend(requests[0])
    assert loaded.similar_items("i4", 3) == recommender.similar_items("i4", 3)


def test_prefix_expansion_keeps_the_most_recent_items():
    sessions = pd.DataFrame({"session": [0, 0, 0, 0, 1, 1], "pos": [0, 1, 2, 3, 0, 1], "item": [1, 2, 3, 4, 5, 6]})
    samples = session_prefixes(sessions, max_len=2)
    assert samples.targets.tolist() == [2, 3, 4, 6]
    assert samples.lengths.tolist() == [1, 2, 2, 1]
    assert samples.items.tolist() == [[1, 0], [1, 2], [2, 3], [5, 0]]


@pytest.mark.data
def test_diginetica_loader_matches_the_published_sample_counts():
    if not (DEFAULT_DATA_ROOT / "diginetica-srgnn").exists():
        pytest.skip(f"Diginetica benchmark not found under {DEFAULT_DATA_ROOT}")
    bench = load_benchmark("diginetica")
    assert len(bench.train) == 719_470 and len(bench.test) == 60_858
    assert bench.n_items == 43_097
    assert bench.test.items.min() >= 0 and bench.train.targets.min() >= 1


def test_validation_split_holds_out_the_most_recent_sessions():
    from measurement.evaluation.srgnn_session_gru import split_validation
    from model.datasets.srgnn import PrefixSamples, SessionBenchmark

    sessions = pd.DataFrame(
        {"session": np.repeat(np.arange(10), 3), "pos": np.tile(np.arange(3), 10), "item": np.arange(30) + 1}
    )
    empty = PrefixSamples(np.zeros((0, 5), np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))
    bench = SessionBenchmark("synthetic", 30, sessions, session_prefixes(sessions, 5), empty)
    train, validation = split_validation(bench, 0.2, max_len=5)
    assert len(train) == 8 * 2 and len(validation) == 2 * 2
    assert set(validation.targets.tolist()) == {26, 27, 29, 30}  # sessions 8 and 9, the latest
    assert not set(train.targets.tolist()) & set(validation.targets.tolist())


def test_without_validation_the_saved_weights_are_the_last_epochs_never_the_best_on_test(tmp_path, monkeypatch):
    """Test figures that fall after epoch 1 must not decide which weights are kept (the old code kept epoch 1's)."""
    import measurement.evaluation.srgnn_session_gru as protocol
    import model.session_gru.network as network
    import model.session_gru.training as training
    from model.datasets.srgnn import SessionBenchmark

    sessions = pd.DataFrame(
        {"session": np.repeat(np.arange(10), 3), "pos": np.tile(np.arange(3), 10), "item": np.arange(30) + 1}
    )
    prefixes = session_prefixes(sessions, 5)
    bench = SessionBenchmark("synthetic", 30, sessions, prefixes, prefixes)
    test_figures = iter([(0.5, 0.2), (0.3, 0.1), (0.1, 0.05)])  # best on test at epoch 1
    saved_after: list[int] = []
    epoch_now = [0]

    def fake_train(model, samples, on_epoch_end, progress, max_batches):
        for epoch in (1, 2, 3):
            epoch_now[0] = epoch
            if on_epoch_end(epoch, {"seconds": 0.1, "loss": 1.0}):
                break

    monkeypatch.setattr(training, "train_next_item_model", fake_train)
    monkeypatch.setattr(network, "rank_top_k", lambda model, samples, k: np.zeros((len(samples), k), np.int64))
    monkeypatch.setattr(protocol, "score_top_k", lambda top, targets, k=20: next(test_figures))
    monkeypatch.setattr(SessionModelRecommender, "save", lambda self, folder: saved_after.append(epoch_now[0]))
    config = protocol.SessionGRUTraining(epochs=3, embedding_dim=8, batch_size=4)
    published = {"NARM": (0.0, 0.0), "SR-GNN": (0.0, 0.0)}
    headline = protocol.run_session_gru(bench, tmp_path / "model", config, published, progress=False)
    assert saved_after[-1] == 3
    assert "epoch 3/3" in headline.note
