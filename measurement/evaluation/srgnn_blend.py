"""The session GRU blended with V-SKNN (and sequential rules) on the SR-GNN benchmarks, weights chosen on validation.

Every model is fitted on the older share of the training sessions only: the GRU by `streamrec evaluate srgnn
--validation F` (its saved weights are its best validation epoch), V-SKNN and sequential rules here, on the same
sessions (V-SKNN's settings chosen among `KNN_SETTINGS` by its own validation HR@20 + MRR@20). On the validation
prefixes (the newest share of training sessions, which none of them saw) each pair of
weights in a grid blends

    (1 - w_knn - w_rules) * p / max p  +  w_knn * knn / max knn  +  w_rules * rules / max rules

per prefix (p: the GRU's softmax over the full catalogue; knn, rules: each model's top-`depth` scores, 0 elsewhere)
and the pair with the best HR@20 + MRR@20 there is the one applied to the test prefixes. The test split is scored
once, after the choice: nothing on it is looked at to choose.

With a refitted GRU (`refit_gru`: trained on every training session for the epochs validation chose, by `streamrec
evaluate srgnn -m session-gru --epochs N` without `--validation`), the chosen V-SKNN settings and sequential rules
are fitted again on every training session too, and the same weights blend the three on the test prefixes: the
choices stay those made on validation; only the data the models learn from grows by the newest share, the sessions
closest in time to the test ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from measurement.evaluation.session_protocol import SessionPrefix, prefix_request
from measurement.evaluation.srgnn_session_gru import K, metric_pair, score_top_k, split_sessions
from model.datasets.srgnn import PrefixSamples, SessionBenchmark, session_prefixes
from model.metrics import MetricRow
from model.recommender import Recommender

log = logging.getLogger(__name__)

KNN_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(10))  # 0 .. 0.9: the GRU keeps a share (it ranks every item)
RULES_WEIGHTS = (0.0, 0.1, 0.2)
# V-SKNN's settings tried on validation before the blend (the registry's defaults first): idf weighting of the
# shared items and 1/distance decay of the session's items, each and both.
KNN_SETTINGS: tuple[dict[str, object], ...] = (
    {}, {"idf": True}, {"weighting": "div"}, {"idf": True, "weighting": "div"})


@dataclass(frozen=True)
class TopLists:
    """Each prefix's top-`depth` item indices (0 = none) and their scores divided by the prefix's best (0 = none)."""

    items: np.ndarray  # int (n, depth)
    scores: np.ndarray  # float32 (n, depth)


def top_lists(model: Recommender, samples: PrefixSamples, depth: int, progress: bool = True,
              batch: int = 512, desc: str = "") -> TopLists:
    """What `model` ranks for every prefix, as the session protocol asks it (the prefix as the session context)."""
    items = np.zeros((len(samples), depth), dtype=np.int64)
    scores = np.zeros((len(samples), depth), dtype=np.float32)
    for start in tqdm(range(0, len(samples), batch), desc=desc, unit="batch", disable=not progress):
        stop = min(start + batch, len(samples))
        requests = [prefix_request(SessionPrefix(f"p{i}", tuple(str(x) for x in samples.items[i, :samples.lengths[i]]),
                                                 str(samples.targets[i]), 0), depth) for i in range(start, stop)]
        for row, ranked in enumerate(model.recommend_batch(requests), start=start):
            if not ranked:
                continue
            values = np.array([s.score for s in ranked], dtype=np.float32)
            items[row, : len(ranked)] = [int(s.item_id) for s in ranked]
            scores[row, : len(ranked)] = values / max(float(values.max()), 1e-12)
    return TopLists(items, scores)


def gru_probabilities(models: Sequence, samples: PrefixSamples,
                      batch: int = 1024) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, the members' mean softmax over the full catalogue divided by its max) per batch; column 0 (padding)
    is 0. One member gives its own softmax over its max; several (GRUs of other seeds) average their probabilities."""
    from model.session_gru.network import make_scorer

    scorers = [make_scorer(model) for model in models]
    for start in range(0, len(samples), batch):
        rows = slice(start, min(start + batch, len(samples)))
        width = max(int(samples.lengths[rows].max()), 1)
        summed = None  # the members' softmaxes summed: over its max, the same as their mean over its max
        for scorer in scorers:
            logits = scorer(samples.items[rows, :width], samples.lengths[rows]).numpy()
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p[:, 0] = 0.0
            p /= p.sum(axis=1, keepdims=True)
            summed = p if summed is None else summed + p
        yield rows, summed / summed.max(axis=1, keepdims=True)


def load_grus(gru_dirs: Path | Sequence[Path]) -> list:
    """The session GRUs saved in `gru_dirs` (one folder, or one per seed of an ensemble)."""
    from model.session_gru.recommender import SessionModelRecommender

    dirs = [gru_dirs] if isinstance(gru_dirs, Path) else list(gru_dirs)
    return [SessionModelRecommender.load(d).model for d in dirs]


def gru_label(models: Sequence) -> str:
    """The GRU's name in the report: one model, or the mean of several seeds."""
    return "session-gru" if len(models) == 1 else f"session-gru (mean of {len(models)} seeds)"


def _scatter(lists: TopLists, rows: slice, width: int) -> np.ndarray:
    dense = np.zeros((rows.stop - rows.start, width), dtype=np.float32)
    r = np.repeat(np.arange(rows.stop - rows.start), lists.items.shape[1])
    dense[r, lists.items[rows].ravel()] = lists.scores[rows].ravel()
    dense[:, 0] = 0.0  # empty slots point at index 0
    return dense


def blend_metrics(models: Sequence, samples: PrefixSamples, knn: TopLists, rules: TopLists,
                  weights: Sequence[tuple[float, float]], progress: bool = True,
                  desc: str = "") -> dict[tuple[float, float], tuple[float, float]]:
    """HR@20 and MRR@20 of every (w_knn, w_rules) blend over `samples` (a target's rank counts the items scored
    strictly above it, so ties are read in its favour only among equal blended scores, as `top_k` would)."""
    hits = {w: 0.0 for w in weights}
    reciprocal = {w: 0.0 for w in weights}
    batches = gru_probabilities(models, samples)
    for rows, p in tqdm(batches, total=-(-len(samples) // 1024), desc=desc, unit="batch", disable=not progress):
        k, r = _scatter(knn, rows, p.shape[1]), _scatter(rules, rows, p.shape[1])
        target = samples.targets[rows]
        line = np.arange(len(target))
        for w in weights:
            w_knn, w_rules = w
            blended = (1.0 - w_knn - w_rules) * p + w_knn * k + w_rules * r
            rank = (blended > blended[line, target][:, None]).sum(axis=1) + 1
            hits[w] += float((rank <= K).sum())
            reciprocal[w] += float(np.where(rank <= K, 1.0 / rank, 0.0).sum())
    n = len(samples)
    return {w: (hits[w] / n, reciprocal[w] / n) for w in weights}


def list_metrics(lists: TopLists, targets: np.ndarray) -> tuple[float, float]:
    """HR@20 and MRR@20 of the lists themselves (a model alone, its own order; empty slots match nothing)."""
    return score_top_k(np.where(lists.scores[:, :K] > 0, lists.items[:, :K], -1), targets)


def subsample(samples: PrefixSamples, n: int | None, seed: int = 7) -> PrefixSamples:
    """At most `n` prefixes, drawn without replacement (kept in order); all of them when n is None."""
    if n is None or n >= len(samples):
        return samples
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), size=n, replace=False))
    return PrefixSamples(samples.items[keep], samples.lengths[keep], samples.targets[keep])


@dataclass(frozen=True)
class BlendResult:
    rows: list[MetricRow]
    chosen: tuple[float, float]
    validation: dict[tuple[float, float], tuple[float, float]]
    validation_prefixes: int
    knn_settings: dict[str, object]


REFIT = "all training sessions, choices from validation"


def run_blend(bench: SessionBenchmark, gru_dir: Path | Sequence[Path], validation_share: float, depth: int = 200,
              validation_prefixes: int | None = 20_000, progress: bool = True,
              refit_gru: Path | Sequence[Path] | None = None) -> BlendResult:
    """Fit V-SKNN and sequential rules on the older sessions, choose the blend on validation, score test once.

    Several GRU folders (the same training, other seeds) blend as one model: their mean softmax."""
    from measurement.evaluation.srgnn import training_frame
    from model.baselines.sequential_rules import SequentialRulesRecommender
    from model.baselines.session_knn import SessionKNNRecommender

    older, recent = split_sessions(bench, validation_share)
    validation = subsample(session_prefixes(recent, bench.train.items.shape[1]), validation_prefixes)
    gru = load_grus(gru_dir)
    frame = training_frame(bench.name, older)
    knn_choice: dict[str, tuple[float, float]] = {}
    knn_lists: dict[str, TopLists] = {}
    knn_models: dict[str, SessionKNNRecommender] = {}
    for settings in KNN_SETTINGS:
        label = _label(settings)
        knn_models[label] = SessionKNNRecommender(**settings).fit(frame)
        knn_lists[label] = top_lists(knn_models[label], validation, depth, progress,
                                     desc=f"session-knn {label}: validation")
        knn_choice[label] = list_metrics(knn_lists[label], validation.targets)
    best_knn = max(KNN_SETTINGS, key=lambda st: sum(knn_choice[_label(st)]))
    log.info("V-SKNN chosen on validation: %s (HR@20 %.4f, MRR@20 %.4f)", _label(best_knn),
             *knn_choice[_label(best_knn)])
    knn = knn_models[_label(best_knn)]
    rules = SequentialRulesRecommender().fit(frame)
    lists = {"session-knn": {"validation": knn_lists[_label(best_knn)],
                             "test": top_lists(knn, bench.test, depth, progress, desc="session-knn: test")},
             "sequential-rules": {split: top_lists(rules, s, depth, progress, desc=f"sequential-rules: {split}")
                                  for split, s in (("validation", validation), ("test", bench.test))}}
    grid = [(wk, wr) for wk in KNN_WEIGHTS for wr in RULES_WEIGHTS if wk + wr < 1.0]
    on_validation = blend_metrics(gru, validation, lists["session-knn"]["validation"],
                                  lists["sequential-rules"]["validation"], grid, progress, "blend: validation")
    chosen = max(grid, key=lambda w: (sum(on_validation[w]), -w[0], -w[1]))
    log.info("blend chosen on validation: w_knn %.1f, w_rules %.1f (HR@20 %.4f, MRR@20 %.4f)", *chosen,
             *on_validation[chosen])
    on_test = blend_metrics(gru, bench.test, lists["session-knn"]["test"], lists["sequential-rules"]["test"],
                            [(0.0, 0.0), chosen], progress, "blend: test")
    n_test, n_valid = len(bench.test), len(validation)
    rows: list[MetricRow] = []
    for name in ("session-knn", "sequential-rules"):
        rows += metric_pair("all", *list_metrics(lists[name]["test"], bench.test.targets), n_test,
                            f"{name} (older sessions)")
    for name, w in ((f"{gru_label(gru)} (older sessions)", (0.0, 0.0)), ("blend (chosen on validation)", chosen)):
        rows += metric_pair("all", *on_test[w], n_test, name)
    for label, (hr, mrr) in knn_choice.items():
        rows += metric_pair(f"validation, {label}", hr, mrr, n_valid, "session-knn (older sessions)")
    for w, (hr, mrr) in on_validation.items():
        rows += metric_pair(f"validation, w_knn {w[0]:.1f} w_rules {w[1]:.1f}", hr, mrr, n_valid,
                            "blend (chosen on validation)")
    if refit_gru is not None:
        rows += refit_rows(bench, refit_gru, dict(best_knn), chosen, depth, progress)
    return BlendResult(rows, chosen, on_validation, n_valid, dict(best_knn))


def refit_rows(bench: SessionBenchmark, gru_dir: Path | Sequence[Path], knn_settings: dict[str, object],
               chosen: tuple[float, float], depth: int, progress: bool) -> list[MetricRow]:
    """Test figures of the chosen blend with every part fitted on all training sessions (nothing chosen here)."""
    from measurement.evaluation.srgnn import training_frame
    from model.baselines.sequential_rules import SequentialRulesRecommender
    from model.baselines.session_knn import SessionKNNRecommender

    frame = training_frame(bench.name, bench.train_sessions)
    knn = top_lists(SessionKNNRecommender(**knn_settings).fit(frame), bench.test, depth, progress,
                    desc="session-knn (all training): test")
    rules = top_lists(SequentialRulesRecommender().fit(frame), bench.test, depth, progress,
                      desc="sequential-rules (all training): test")
    gru = load_grus(gru_dir)
    on_test = blend_metrics(gru, bench.test, knn, rules, [(0.0, 0.0), chosen], progress, "blend (refit): test")
    n_test = len(bench.test)
    rows = metric_pair("all", *list_metrics(knn, bench.test.targets), n_test, "session-knn (all training sessions)")
    rows += metric_pair("all", *list_metrics(rules, bench.test.targets), n_test,
                        "sequential-rules (all training sessions)")
    rows += metric_pair("all", *on_test[(0.0, 0.0)], n_test, f"{gru_label(gru)} (all training sessions)")
    rows += metric_pair("all", *on_test[chosen], n_test, f"blend ({REFIT})")
    return rows


# The issue's bars (GCE-GNN on Diginetica; about SGNN-HN's level on YooChoose-1/64), in %.
BARS: dict[str, tuple[str, float, float]] = {"diginetica": ("GCE-GNN (published, the bar)", 54.22, 19.04),
                                             "yoochoose": ("the bar (issue 12)", 71.0, 31.5)}


def bar_rows(dataset: str) -> list[MetricRow]:
    name, hr, mrr = BARS[dataset]
    return metric_pair("all", hr / 100, mrr / 100, 0, name)


def _label(settings: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


