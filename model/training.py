"""Train the whole model stack from an interactions frame: two-tower -> FAISS index -> ranker -> bundle."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import tensorflow as tf
from pydantic import BaseModel, Field
from tqdm.auto import tqdm

from model.bundle import BundleConfig, ModelBundle
from model.index.faiss_index import EXACT_LIMIT, ItemIndex, query_with_prior, recall_vs_exact, with_prior
from model.ranking.features import RankerConfig
from model.ranking.training import ranker_examples, train_ranker
from model.scoring import QueryEncoder
from model.two_tower.examples import ITEM_EVENTS, retrieval_examples, sort_by_time
from model.two_tower.features import build_feature_spec
from model.two_tower.holdout import holdout_examples, per_user_holdout
from model.two_tower.towers import TwoTowerConfig
from model.two_tower.training import TwoTowerHistory, item_vectors, query_vectors, train_two_tower

log = logging.getLogger(__name__)


class TrainingConfig(BaseModel):
    two_tower: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    ranker: RankerConfig | None = Field(default_factory=RankerConfig, description="None: retrieval only")
    exact_index_limit: int = Field(EXACT_LIMIT, ge=1, description="Flat index up to this many items, HNSW above")
    threads: int = Field(2, ge=1, description="TensorFlow intra-op threads (the machine is shared)")


def limit_threads(threads: int) -> None:
    """Keep TensorFlow to `threads` cores; only possible before TensorFlow starts its thread pools."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process: keep what it has


def user_histories(frame: pd.DataFrame, length: int) -> dict[str, list[str]]:
    """Each user's latest product items, newest first (what a request without session context pools over)."""
    items = sort_by_time(frame)
    items = items[(items["kind"] == "product") & items["event_type"].isin(ITEM_EVENTS) & items["item_id"].notna()]
    tail = items.groupby("user_id", sort=False).tail(length)
    return {str(u): [str(i) for i in reversed(g.tolist())] for u, g in tail.groupby("user_id", sort=False)["item_id"]}


def train_bundle(frame: pd.DataFrame, config: TrainingConfig | None = None, catalogue: pd.DataFrame | None = None,
                 progress: bool = True, trained_on: str = "") -> ModelBundle:
    """Two-tower retrieval, its FAISS index and (optionally) the wide & deep ranker, as one unsaved bundle."""
    config = config or TrainingConfig()
    limit_threads(config.threads)
    started = time.monotonic()
    steps = tqdm(total=4, desc="train bundle", disable=not progress)
    spec = build_feature_spec(frame, config.two_tower.history_length, catalogue=catalogue)
    examples = retrieval_examples(frame, spec)
    steps.set_postfix(step="two-tower", examples=len(examples))
    selection: TwoTowerHistory | None = None
    if config.two_tower.validation == "per-user-holdout":
        towers, tower_history, selection = train_two_tower_on_user_holdout(frame, spec, examples, config.two_tower,
                                                                           catalogue, progress)
    else:
        towers, tower_history = train_two_tower(spec, examples, config.two_tower, progress=progress)
    steps.update()

    steps.set_postfix(step="index")
    vectors = item_vectors(towers, spec)
    indexed = with_prior(vectors, tower_history.popularity_prior * np.asarray(spec.item_log_q, dtype=np.float32))
    index = ItemIndex.build(indexed, exact_limit=config.exact_index_limit)
    sample = examples.take(np.random.default_rng(0).permutation(len(examples))[:1000])
    index_recall = recall_vs_exact(index, indexed, query_with_prior(query_vectors(towers, sample.queries)), k=100)
    steps.update()

    ranker, ranker_report = None, None
    if config.ranker is not None:
        steps.set_postfix(step="ranker")
        encoder = QueryEncoder(towers.query, spec)
        labelled = ranker_examples(frame, spec, encoder, vectors, config.ranker)
        if labelled.labels.sum() > 0 and (labelled.labels == 0).any():
            ranker, ranker_report = train_ranker(spec, labelled, config.ranker, progress=progress)
        else:
            log.warning("no conversions (or no negatives) to train the ranker on: retrieval only")
    steps.update()

    bundle_choice: dict[str, object] = {}
    if ranker is not None:
        steps.set_postfix(step="ranker blend")
        bundle_choice = choose_ranker_blend(frame, spec, towers, vectors, index, ranker, config, tower_history)
    metrics: dict[str, object] = {
        "two_tower": tower_history.as_dict(),
        "two_tower_selection": selection.as_dict() if selection else None,
        "index": {"kind": index.kind, "items": len(index), "recall_at_100_vs_exact": index_recall},
        "ranker": ranker_report.as_dict() if ranker_report else None,
        "ranker_blend_choice": bundle_choice,
        "training_seconds": time.monotonic() - started,
        "interactions": len(frame),
        "users": len(spec.users) - 1,
        "items": len(spec.items) - 1,
    }
    bundle = ModelBundle(
        config=BundleConfig(created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(), two_tower=config.two_tower,
                            ranker=config.ranker if ranker is not None else None, spec=spec, index_kind=index.kind,
                            popularity_prior=tower_history.popularity_prior,
                            serve_ranker=bool(bundle_choice.get("serve_ranker", False)),
                            ranker_blend=float(bundle_choice.get("blend", 0.0)),
                            trained_on=trained_on),
        towers=towers, item_vectors=vectors, index=index, ranker=ranker,
        user_history=user_histories(frame, spec.history_length), metrics=metrics,
    )
    steps.update()
    steps.close()
    return bundle


def train_two_tower_on_user_holdout(frame: pd.DataFrame, spec, examples, config: TwoTowerConfig,
                                    catalogue: pd.DataFrame | None, progress: bool):
    """Choose the epoch count and popularity prior on a per-user holdout of `frame`, then refit on all of it.

    Returns (towers, history of the refit towers, history of the selection run).
    """
    holdout = per_user_holdout(frame, config.holdout_user_fraction, config.holdout_item_fraction, config.seed)
    fit_spec = build_feature_spec(holdout.fit_part, config.history_length, catalogue=catalogue)
    validation, exclude = holdout_examples(fit_spec, holdout)
    log.info("per-user holdout: %d rows held out of %d users, %d validation examples", len(holdout.held_out),
             holdout.held_out["user_id"].nunique(), len(validation))
    towers, selection = train_two_tower(fit_spec, retrieval_examples(holdout.fit_part, fit_spec), config, progress,
                                        validation=validation, validation_exclude=exclude)
    refit = config.model_copy(update={"epochs": max(1, selection.best_epoch)})
    towers, history = train_two_tower(spec, examples, refit, progress, validation=examples.take(np.arange(0)),
                                      fixed_epochs=True)
    history.popularity_prior = selection.popularity_prior
    history.validation_recall_by_prior = selection.validation_recall_by_prior
    return towers, history, selection


BLEND_GRID = (0.0, 0.5, 1.0, 3.0)


def choose_ranker_blend(frame: pd.DataFrame, spec, towers, vectors, index, ranker, config: TrainingConfig,
                        tower_history, slice_fraction: float = 0.1, max_events: int = 2000) -> dict[str, object]:
    """Serve the ranker only if it beats retrieval alone at trigger moments of the latest time slice.

    HR@10 of the next product interaction given the context before it (what a trigger asks), for
    retrieval alone and for ranker logit + blend * retrieval logit over a small grid.
    """
    from model.bundle import BundleConfig, ModelBundle
    from model.holdout_scoring import score_next_items
    from model.metrics import metric_value
    from model.two_tower.recommender import TwoTowerRecommender

    bundle = ModelBundle(
        config=BundleConfig(created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(), two_tower=config.two_tower,
                            ranker=config.ranker, spec=spec, popularity_prior=tower_history.popularity_prior),
        towers=towers, item_vectors=vectors, index=index, ranker=ranker,
    )
    since = sort_by_time(frame)["ts"].iloc[int(len(frame) * (1 - slice_fraction))]

    def hr_at_10(model: TwoTowerRecommender) -> float:
        rows = score_next_items(model.name, model, frame, since, ks=(10,), max_events=max_events, progress=False)
        return metric_value(rows, "HR", 10)

    results = {"retrieval only": hr_at_10(TwoTowerRecommender(bundle, use_ranker=False))}
    for blend in BLEND_GRID:
        results[f"blend {blend:g}"] = hr_at_10(TwoTowerRecommender(bundle, use_ranker=True, blend=blend))
    best_blend = max(BLEND_GRID, key=lambda b: results[f"blend {b:g}"])
    return {"hr@10": results, "blend": best_blend,
            "serve_ranker": results[f"blend {best_blend:g}"] > results["retrieval only"]}
