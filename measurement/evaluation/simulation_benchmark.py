"""Simulated shop with planted tastes: retrieval and ranking judged against the oracle that knows the tastes.

Events of `producers.simulator.simulate` are split by time (earliest 80% train). Retrieval: Recall@k
of each recommender on the products each user interacted with in the test period, beside the oracle
(`SyntheticWorld.oracle_top_products`) and the overlap of the model's top-k with the oracle's.
Ranking: AUC of the ranker on the test period's (session, item) examples, beside the AUC of the
planted affinity on the same examples. Offers: weighted AUC per offer type.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from measurement.evaluation.holdout_evaluation import (
    evaluate_holdout,
    evaluate_next_item,
    metrics_table,
    relevant_and_exclude,
)
from measurement.report_files import write_bar_plot, write_table
from model.baselines.item_cosine import ItemCosineRecommender
from model.baselines.popularity import PopularityRecommender
from model.interactions import events_to_frame
from model.metrics import auc
from model.offers import evaluate_offers
from model.ranking.training import ranker_examples
from model.recommender import RecommendationRequest, Recommender, ScoredItem
from model.scoring import QueryEncoder
from model.training import TrainingConfig, train_bundle
from model.two_tower.examples import contexts_before, query_inputs, sort_by_time
from model.two_tower.features import utc_ms
from model.two_tower.recommender import TwoTowerRecommender
from producers.simulator import simulate
from producers.synthetic_world import SyntheticWorld

ITEM_EVENTS = ("page_view", "add_to_cart", "purchase")


class OracleRecommender(Recommender):
    """Recommends by the planted affinity: the ceiling a model can approach."""

    name = "oracle"

    def __init__(self, world: SyntheticWorld) -> None:
        self.world = world
        self.user_index = {u: i for i, u in enumerate(world.user_ids)}
        self.product_index = {p: i for i, p in enumerate(world.product_ids)}

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        user = self.user_index.get(request.user_id)
        if user is None:
            return []
        exclude = {self.product_index[i] for i in request.exclude if i in self.product_index}
        return [ScoredItem(p, 0.0) for p in self.world.oracle_top_products(user, request.k, exclude)]


def run_simulation_benchmark(n_events: int, config: TrainingConfig, seed: int = 7, out_dir: Path = Path("reports"),
                             progress: bool = True) -> dict[str, object]:
    world, events = simulate(n_events, seed=seed)
    frame = sort_by_time(events_to_frame(events))
    cut = frame["ts"].iloc[int(len(frame) * 0.8)]
    train, test = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
    relevant, exclude = relevant_and_exclude(train, test, test_events=ITEM_EVENTS)
    now_ms = int(utc_ms(pd.Series([cut]))[0])

    bundle = train_bundle(train, config, catalogue=world.catalogue_frame(), progress=progress, trained_on="simulated")
    models: list[Recommender] = [PopularityRecommender().fit(train), ItemCosineRecommender().fit(train)]
    models += [TwoTowerRecommender(bundle, fallback=models[0], use_ranker=False)]
    if bundle.ranker is not None:
        models += [TwoTowerRecommender(bundle, fallback=models[0], use_ranker=True)]
    models += [OracleRecommender(world)]
    rows = {m.name: evaluate_holdout(m, relevant, exclude, now_ms=now_ms, progress=progress) for m in models}
    rows["two-tower"]["overlap@100_with_oracle"] = _oracle_overlap(models[2], models[-1], relevant, exclude, now_ms)
    retrieval = metrics_table(rows)
    write_table(retrieval, out_dir, "sim_retrieval")
    write_bar_plot(retrieval, ("recall@10", "recall@20", "recall@100", "ndcg@10"), out_dir, "sim_retrieval",
                   f"Simulated shop ({n_events:,} events): test-period recall vs the oracle")

    # At trigger moments: the context right before each test-period interaction, as the worker has it.
    next_item = metrics_table({m.name: evaluate_next_item(m, frame, cut, progress=progress) for m in models[:-1]})
    next_purchase = metrics_table({
        m.name: evaluate_next_item(m, frame, cut, progress=progress, event_types=("purchase",)) for m in models[:-1]
    })
    next_item = pd.concat([next_item.add_prefix("any "), next_purchase.add_prefix("purchase ")], axis=1)
    write_table(next_item, out_dir, "sim_next_item")
    write_bar_plot(next_item, ("any hr@10", "any hr@100", "purchase hr@10", "purchase hr@100"), out_dir,
                   "sim_next_item", "Simulated shop: next interaction / purchase given the session context")

    ranking = _ranking_vs_oracle(world, frame, cut, bundle, config)
    offers = _offers(frame, cut, bundle)
    summary = {"retrieval": retrieval.reset_index().to_dict(orient="records"),
               "next_item": next_item.reset_index().to_dict(orient="records"), "ranking": ranking, "offers": offers,
               "bundle_metrics": bundle.metrics}
    (out_dir / "sim_eval.json").write_text(json.dumps(summary, indent=2, default=str))
    write_table(pd.DataFrame(offers).set_index("offer_type"), out_dir, "sim_offers")
    write_table(pd.DataFrame([ranking]).set_index("model"), out_dir, "sim_ranking")
    return summary


def _oracle_overlap(model: Recommender, oracle: Recommender, relevant, exclude, now_ms: int, k: int = 100) -> float:
    users = sorted(relevant)[:500]
    requests = [RecommendationRequest(u, k, exclude=frozenset(exclude.get(u, ())), now_ms=now_ms) for u in users]
    overlaps = [len({s.item_id for s in a} & {s.item_id for s in b}) / k
                for a, b in zip(model.recommend_batch(requests), oracle.recommend_batch(requests), strict=True)]
    return float(np.mean(overlaps)) if overlaps else float("nan")


def _ranking_vs_oracle(world: SyntheticWorld, frame: pd.DataFrame, cut: pd.Timestamp, bundle, config) -> dict:
    """Ranker AUC on test-period (session, item) examples never trained on, and the planted affinity's AUC."""
    spec = bundle.spec
    if bundle.ranker is None or config.ranker is None:
        return {"model": "ranker", "note": "no ranker trained"}
    examples = ranker_examples(frame, spec, QueryEncoder(bundle.towers.query, spec), bundle.item_vectors,
                               config.ranker)
    test = examples.take(np.flatnonzero(examples.ts_ms >= int(utc_ms(pd.Series([cut]))[0])))
    started = time.monotonic()
    scores = bundle.ranker.predict(test.inputs, batch_size=8192, verbose=0)
    user_index = {u: i for i, u in enumerate(world.user_ids)}
    product_index = {p: i for i, p in enumerate(world.product_ids)}
    users = [spec.users.tokens[u] for u in test.inputs["user"]]
    items = [spec.items.tokens[i] for i in test.inputs["item"]]
    oracle = np.array([world.affinity(user_index[u])[product_index[i]] if u in user_index and i in product_index
                       else -np.inf for u, i in zip(users, items, strict=True)])
    viewed = ~test.sampled
    return {
        "model": "ranker", "test_examples": len(test), "test_conversions": int(test.labels.sum()),
        "ranker_auc": auc(test.labels, scores), "oracle_affinity_auc": auc(test.labels, oracle),
        "retrieval_score_auc": auc(test.labels, test.inputs["dense"][:, 4]),
        "ranker_auc_viewed_only": auc(test.labels[viewed], scores[viewed]),
        "oracle_affinity_auc_viewed_only": auc(test.labels[viewed], oracle[viewed]),
        "scoring_seconds": time.monotonic() - started,
    }


def _offers(frame: pd.DataFrame, cut: pd.Timestamp, bundle) -> list[dict]:
    """Offers evaluated on test-period purchases and add-to-carts, with the context before each."""
    spec = bundle.spec
    contexts = contexts_before(frame, cap=max(spec.history_length, 20))
    mask = (frame["ts"] >= cut) & frame["event_type"].isin(("purchase", "add_to_cart")) & frame["item_id"].notna()
    rows = np.flatnonzero(mask.to_numpy())
    items = spec.items.lookup(frame["item_id"].to_numpy()[rows])
    rows, items = rows[items > 0], items[items > 0]
    users = frame["user_id"].astype(str).to_numpy()[rows]
    queries = QueryEncoder(bundle.towers.query, spec)(
        query_inputs(spec, users, [contexts[r] for r in rows], utc_ms(frame["ts"])[rows]))
    counts = np.exp(np.asarray(spec.item_log_popularity)) - 1
    results = evaluate_offers(spec, bundle.item_vectors, queries, items, counts, bundle.config.two_tower.temperature)
    return [r.__dict__ for r in results]
