"""The ranker's second objective: will the session buy this candidate? Labelled from the same logged triggers as the
listwise head, fitted as a wide & deep logit with positives weighted up (purchases are a few per thousand
candidates), and judged by AUC on a time-ordered holdout beside the scores the candidates came with.

Time order: the logged triggers, oldest first, are split 70 / 15 / 15: fit, epochs chosen on the validation
loss, and the holdout the AUCs are measured on (never seen by either choice).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from model.hybrid.example_log import LoggedTrigger, feature_width, next_items, padded
from model.hybrid.ranker import ListwiseRanker, RankerConfig, TrainingReport, fit_wide_deep, weighted_logistic_loss

log = logging.getLogger(__name__)

FIT_SHARE, VALIDATION_SHARE = 0.70, 0.15
MAX_POSITIVE_WEIGHT = 100.0


@dataclass
class ConversionExamples:
    """Every logged trigger's candidates (T x C x F, mask T x C) and whether its session bought each one later."""

    features: np.ndarray
    mask: np.ndarray
    converted: np.ndarray  # T x C float32, 1 = bought after the trigger in the same session
    fusion: np.ndarray  # T x C: the untrained union order's score (reciprocal-rank fusion), the retrieval score


@dataclass
class ConversionReport:
    holdout_triggers: int
    holdout_candidates: int
    holdout_purchases: int
    auc: dict[str, float]  # scorer -> AUC on the holdout's candidates
    training: TrainingReport | None = None
    skipped: str | None = None
    sources_auc: dict[str, float] = field(default_factory=dict)


def conversion_examples(logged: Sequence[LoggedTrigger], frame: pd.DataFrame) -> ConversionExamples:
    """`logged` (from the example log) in time order, each candidate labelled by a later purchase of it in the
    trigger's session."""
    bought = next_items(frame, ("purchase",))
    ordered = sorted(logged, key=lambda t: t.now_ms)
    features, mask = padded(ordered, feature_width(ordered))
    converted = np.zeros(mask.shape, np.float32)
    fusion = np.zeros(mask.shape, np.float32)
    for row, trigger in enumerate(ordered):
        n = len(trigger.items)
        if trigger.fusion is not None:
            fusion[row, :n] = trigger.fusion
        times, items = bought.get(trigger.session_id, (np.empty(0, np.int64), []))
        later = set(items[int(np.searchsorted(times, trigger.now_ms, side="right")):])
        converted[row, :n] = [1.0 if item in later else 0.0 for item in trigger.items]
    return ConversionExamples(features, mask, converted, fusion)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties counted half); NaN without both classes."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels > 0].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def train_conversion(examples: ConversionExamples, feature_names: list[str], sources: Sequence[str],
                     listwise: ListwiseRanker | None = None, config: RankerConfig | None = None,
                     progress: bool = True) -> tuple[ListwiseRanker | None, ConversionReport]:
    """Fit the conversion logit; AUC on the holdout for it, the fusion score, the listwise ranker's score and each
    source's reciprocal rank (absent = 0)."""
    n = len(examples.converted)
    fit_end, valid_end = int(n * FIT_SHARE), int(n * (FIT_SHARE + VALIDATION_SHARE))
    hold = examples.mask[valid_end:]
    labels = examples.converted[valid_end:][hold]
    report = ConversionReport(n - valid_end, int(hold.sum()), int(labels.sum()), {})
    fitted = examples.converted[:fit_end][examples.mask[:fit_end]]
    if fitted.sum() == 0 or labels.sum() == 0 or fit_end < 1 or valid_end <= fit_end:
        report.skipped = (f"no purchases to learn from or to judge by ({int(fitted.sum())} in the fit split, "
                          f"{int(labels.sum())} in the holdout)")
        log.info("conversion head skipped: %s", report.skipped)
        return None, report
    weight = min(MAX_POSITIVE_WEIGHT, float((len(fitted) - fitted.sum()) / fitted.sum()))
    model, training = fit_wide_deep(examples.features, examples.mask, examples.converted, fit_end, valid_end,
                                    weighted_logistic_loss(weight), feature_names, config or RankerConfig(),
                                    progress, "conversion")
    report.training = training
    held = examples.features[valid_end:]
    report.auc["conversion head"] = auc(model.scores(held)[hold], labels)
    report.auc["retrieval (fusion of the sources)"] = auc(examples.fusion[valid_end:][hold], labels)
    if listwise is not None:
        report.auc["listwise head"] = auc(listwise.scores(held)[hold], labels)
    for j, name in enumerate(sources):
        report.sources_auc[name] = auc(held[..., 3 * j + 1][hold], labels)  # the source's reciprocal rank
    log.info("conversion AUC on the holdout (%d purchases of %d candidates): %s", report.holdout_purchases,
             report.holdout_candidates, {k: round(v, 4) for k, v in report.auc.items()})
    return model, report


def conversion_summary(report: ConversionReport) -> dict:
    """The report as JSON-ready figures (AUCs rounded to 4 places)."""
    out: dict = {"holdout_triggers": report.holdout_triggers, "holdout_candidates": report.holdout_candidates,
                 "holdout_purchases": report.holdout_purchases}
    if report.skipped:
        out["skipped"] = report.skipped
        return out
    out["auc"] = {k: round(v, 4) for k, v in report.auc.items()}
    out["auc_by_source_rank"] = {k: round(v, 4) for k, v in report.sources_auc.items()}
    if report.training is not None:
        out["best_epoch"] = report.training.best_epoch
    return out
