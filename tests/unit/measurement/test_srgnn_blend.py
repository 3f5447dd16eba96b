"""The SR-GNN blend: its figures agree with each model alone, and its weights are chosen without the test split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from measurement.evaluation.srgnn_blend import TopLists, blend_metrics, list_metrics, run_blend
from model.datasets.srgnn import PrefixSamples, SessionBenchmark, pad_sequences, session_prefixes


def _bench(seed: int = 3, n_items: int = 30, sessions: int = 400) -> SessionBenchmark:
    """Sessions that walk item i -> i + 1 (mod n) with some noise: neighbours and rules can learn it."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(sessions):
        item = int(rng.integers(1, n_items + 1))
        for pos in range(int(rng.integers(2, 7))):
            rows.append((s, pos, item))
            item = item % n_items + 1 if rng.random() < 0.8 else int(rng.integers(1, n_items + 1))
    frame = pd.DataFrame(rows, columns=["session", "pos", "item"])
    test_prefixes = [np.array([i, i % n_items + 1], dtype=np.int32) for i in range(1, n_items + 1)]
    items, lengths = pad_sequences(test_prefixes, 20)
    targets = np.array([(i + 1) % n_items + 1 for i in range(1, n_items + 1)], dtype=np.int32)
    return SessionBenchmark("tiny", n_items, frame, session_prefixes(frame, 20), PrefixSamples(items, lengths, targets))


@pytest.fixture(scope="module")
def gru_dir(tmp_path_factory):
    from model.session_gru.network import SessionModelConfig, build_model
    from model.session_gru.recommender import SessionModelRecommender

    bench = _bench()
    model = build_model(SessionModelConfig(n_items=bench.n_items, embedding_dim=8, hidden_units=8))
    folder = tmp_path_factory.mktemp("gru") / "session-gru"
    SessionModelRecommender.from_trained(model, [str(i) for i in range(1, bench.n_items + 1)],
                                         np.arange(1, bench.n_items + 1)).save(folder)
    return folder


def test_the_gru_weight_alone_gives_the_gru_figures(gru_dir):
    from measurement.evaluation.srgnn_session_gru import score_top_k
    from model.session_gru.network import rank_top_k
    from model.session_gru.recommender import SessionModelRecommender

    bench = _bench()
    model = SessionModelRecommender.load(gru_dir).model
    empty = TopLists(np.zeros((len(bench.test), 5), np.int64), np.zeros((len(bench.test), 5), np.float32))
    figures = blend_metrics([model], bench.test, empty, empty, [(0.0, 0.0)], progress=False)
    assert figures[(0.0, 0.0)] == pytest.approx(score_top_k(rank_top_k(model, bench.test, 20), bench.test.targets))


def test_grus_of_several_seeds_blend_as_their_mean_softmax():
    """An ensemble ranks by the members' mean probability: not by either member, nor by their summed logits."""
    from measurement.evaluation.srgnn_blend import gru_probabilities
    from measurement.evaluation.srgnn_session_gru import score_top_k
    from model.session_gru.network import SessionModelConfig, build_model, make_scorer

    bench = _bench(n_items=200)
    members = [build_model(SessionModelConfig(n_items=bench.n_items, embedding_dim=8, hidden_units=8, seed=seed,
                                              normalize=False)) for seed in (1, 2)]
    for member, factor in zip(members, (30.0, 1.0), strict=True):  # confident and flat: means and logits part
        member.item_embedding.embeddings.assign(member.item_embedding.embeddings * factor)
    width = int(bench.test.lengths.max())
    logits = [make_scorer(m)(bench.test.items[:, :width], bench.test.lengths).numpy() for m in members]
    softmax = [np.exp(z - z.max(axis=1, keepdims=True)) for z in logits]
    mean = sum(p / p.sum(axis=1, keepdims=True) for p in softmax) / 2
    mean[:, 0] = 0.0
    (rows, blended), = list(gru_probabilities(members, bench.test))
    np.testing.assert_allclose(blended, mean / mean.max(axis=1, keepdims=True), rtol=1e-4, atol=1e-7)
    empty = TopLists(np.zeros((len(bench.test), 5), np.int64), np.zeros((len(bench.test), 5), np.float32))
    figures = blend_metrics(members, bench.test, empty, empty, [(0.0, 0.0)], progress=False)[(0.0, 0.0)]
    assert figures == pytest.approx(score_top_k(np.argsort(-mean, axis=1)[:, :20], bench.test.targets))
    assert rows == slice(0, len(bench.test))


def test_list_metrics_read_the_targets_position_and_ignore_empty_slots():
    lists = TopLists(np.array([[3, 5, 0], [7, 0, 0], [0, 0, 0]]),
                     np.array([[1.0, 0.5, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32))
    hr, mrr = list_metrics(lists, np.array([5, 9, 0]))
    assert hr == pytest.approx(1 / 3) and mrr == pytest.approx(0.5 / 3)


def test_the_weights_are_chosen_on_validation_and_the_test_targets_change_nothing_but_test_figures(gru_dir):
    bench = _bench()
    first = run_blend(bench, gru_dir, 0.2, depth=10, validation_prefixes=None, progress=False)
    assert first.chosen == max(first.validation, key=lambda w: (sum(first.validation[w]), -w[0], -w[1]))
    # The neighbours and rules see the walk; the untrained GRU does not: validation picks a share for them.
    assert first.chosen != (0.0, 0.0)
    shuffled = replace(bench, test=replace(bench.test, targets=np.roll(bench.test.targets, 7)))
    second = run_blend(shuffled, gru_dir, 0.2, depth=10, validation_prefixes=None, progress=False)
    assert second.chosen == first.chosen and second.validation == first.validation
    assert second.knn_settings == first.knn_settings
    blended = [r.value for r in first.rows if r.model.startswith("blend") and r.slice == "all"]
    assert blended != [r.value for r in second.rows if r.model.startswith("blend") and r.slice == "all"]


def test_a_refit_keeps_the_validation_choices_and_learns_from_the_newest_sessions_too(gru_dir):
    """The newest sessions walk two steps at a time, as the test prefixes do: only models refitted on every training
    session know that walk, and the refit changes none of the choices made on validation."""
    bench = _bench()
    frame = bench.train_sessions.copy()
    newest = frame["session"] >= frame["session"].quantile(0.8)
    frame.loc[newest, "item"] = (frame.loc[newest, "pos"] * 2 + frame.loc[newest, "session"]) % bench.n_items + 1
    n = bench.n_items
    items, lengths = pad_sequences([np.array([i, (i + 1) % n + 1], dtype=np.int32) for i in range(1, n + 1)], 20)
    targets = np.array([((i + 1) % n + 2) % n + 1 for i in range(1, n + 1)], dtype=np.int32)
    drifted = replace(bench, train_sessions=frame, test=PrefixSamples(items, lengths, targets))
    plain = run_blend(drifted, gru_dir, 0.2, depth=10, validation_prefixes=None, progress=False)
    refit = run_blend(drifted, gru_dir, 0.2, depth=10, validation_prefixes=None, progress=False, refit_gru=gru_dir)
    assert refit.chosen == plain.chosen and refit.knn_settings == plain.knn_settings
    mrr = {r.model: r.value for r in refit.rows if r.metric == "MRR" and r.slice == "all"}
    assert mrr["session-knn (all training sessions)"] > mrr["session-knn (older sessions)"]  # 0.21 against 0.17
    assert "blend (all training sessions, choices from validation)" in mrr
