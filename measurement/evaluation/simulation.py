"""Simulated shop with planted tastes (`streamrec evaluate sim`): models judged beside the oracle that knows them.

Events of `producers.simulator.simulate` are split by time (earliest 80% train). Retrieval: each user's list
against the products they touched in the test period (train purchases excluded), beside the oracle
(`measurement.evaluation.oracle`) and the overlap of the two-tower's top 100 with the oracle's. Next item: at
each test-period interaction, given the context before it. Ranking: AUC of the ranker on the test period's
(session, item) examples beside the planted affinity's. Offers: weighted AUC per offer type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from measurement.evaluation.oracle import OracleRecommender
from measurement.report import EvaluationResult
from model.baselines.item_cosine import ItemCosineRecommender
from model.baselines.popularity import PopularityRecommender
from model.holdout_scoring import HeldOut, held_out_purchases, score_next_items, score_users
from model.interactions import events_to_frame
from model.metrics import KS, MetricRow, auc
from model.offers import evaluate_offers
from model.ranking.training import ranker_examples
from model.recommender import RecommendationRequest, Recommender
from model.scoring import QueryEncoder
from model.training import TrainingConfig, train_bundle
from model.two_tower.examples import ITEM_EVENTS, contexts_before, query_inputs, sort_by_time
from model.two_tower.features import utc_ms
from model.two_tower.recommender import TwoTowerRecommender
from producers.simulator import simulate
from producers.synthetic_world import SyntheticWorld


def run_simulation_protocol(n_events: int, config: TrainingConfig, seed: int = 7, ks: tuple[int, ...] = KS,
                            progress: bool = True) -> EvaluationResult:
    """Simulate, split by time, train the bundle and the baselines, and score them all beside the oracle."""
    world, events = simulate(n_events, seed=seed)
    frame = sort_by_time(events_to_frame(events))
    cut = frame["ts"].iloc[int(len(frame) * 0.8)]
    train, test = frame[frame["ts"] < cut], frame[frame["ts"] >= cut]
    held = held_out_purchases(train, test, test_events=ITEM_EVENTS, now_ms=int(utc_ms(pd.Series([cut]))[0]))

    bundle = train_bundle(train, config, catalogue=world.catalogue_frame(), progress=progress, trained_on="simulated")
    popularity = PopularityRecommender().fit(train)
    models: dict[str, Recommender] = {  # named as in the model registry, like every protocol's report
        "popularity": popularity, "item-cosine": ItemCosineRecommender().fit(train),
        "two-tower": TwoTowerRecommender(bundle, fallback=popularity, use_ranker=False)}
    if bundle.ranker is not None:
        models["two-tower-ranker"] = TwoTowerRecommender(bundle, fallback=popularity, use_ranker=True)
    oracle = OracleRecommender(world)
    rows: list[MetricRow] = []
    for name, model in [*models.items(), ("oracle", oracle)]:
        rows += score_users(name, model, held, ks, progress=progress)
    overlap, n = _oracle_overlap(models["two-tower"], oracle, held)
    rows.append(MetricRow("two-tower", "holdout", "all", "overlap_with_oracle", 100, overlap, n))
    # At trigger moments: the context right before each test-period interaction, as the worker has it.
    for name, model in models.items():
        rows += score_next_items(name, model, frame, cut, ks, progress=progress)
        rows += score_next_items(name, model, frame, cut, ks, progress=progress, event_types=("purchase",),
                                 target="next-purchase")
    rows += _ranking_vs_oracle(world, frame, cut, bundle, config)
    rows += _offers(frame, cut, bundle, "two-tower")
    names = [*models, "oracle"]
    info = {"events": n_events, "seed": seed, "world": f"{len(world.user_ids):,} users, {len(world.product_ids):,} "
            "products", "split": "earliest 80% of events train, the rest test",
            "test_users": len(held.relevant), "bundle_metrics": bundle.metrics}
    return EvaluationResult(title=f"Simulated shop ({n_events:,} events): models beside the oracle", models=names,
                            rows=rows, info=info)


def _oracle_overlap(model: Recommender, oracle: Recommender, held: HeldOut, k: int = 100) -> tuple[float, int]:
    """Mean share of the model's top k that the oracle's top k also holds, over the first 500 test users."""
    users = sorted(held.relevant)[:500]
    requests = [RecommendationRequest(u, k, exclude=frozenset(held.exclude.get(u, ())), now_ms=held.now_ms)
                for u in users]
    overlaps = [len({s.item_id for s in a} & {s.item_id for s in b}) / k
                for a, b in zip(model.recommend_batch(requests), oracle.recommend_batch(requests), strict=True)]
    return (float(np.mean(overlaps)) if overlaps else float("nan")), len(overlaps)


def _ranking_vs_oracle(world: SyntheticWorld, frame: pd.DataFrame, cut: pd.Timestamp, bundle,
                       config: TrainingConfig) -> list[MetricRow]:
    """Ranker AUC on test-period (session, item) examples never trained on, beside the planted affinity's AUC
    (model "oracle") and the retrieval score's (model "two-tower"); slice "viewed" keeps viewed items only."""
    spec = bundle.spec
    if bundle.ranker is None or config.ranker is None:
        return []
    examples = ranker_examples(frame, spec, QueryEncoder(bundle.towers.query, spec), bundle.item_vectors,
                               config.ranker)
    test = examples.take(np.flatnonzero(examples.ts_ms >= int(utc_ms(pd.Series([cut]))[0])))
    scores = bundle.ranker.predict(test.inputs, batch_size=8192, verbose=0)
    user_index = {u: i for i, u in enumerate(world.user_ids)}
    product_index = {p: i for i, p in enumerate(world.product_ids)}
    users = [spec.users.tokens[u] for u in test.inputs["user"]]
    items = [spec.items.tokens[i] for i in test.inputs["item"]]
    oracle = np.array([world.affinity(user_index[u])[product_index[i]] if u in user_index and i in product_index
                       else -np.inf for u, i in zip(users, items, strict=True)])
    viewed = ~test.sampled
    n, n_viewed = len(test), int(viewed.sum())
    return [
        MetricRow("two-tower-ranker", "converted", "all", "AUC", None, auc(test.labels, scores), n),
        MetricRow("oracle", "converted", "all", "AUC", None, auc(test.labels, oracle), n),
        MetricRow("two-tower", "converted", "all", "AUC", None, auc(test.labels, test.inputs["dense"][:, 4]), n),
        MetricRow("two-tower-ranker", "converted", "viewed", "AUC", None, auc(test.labels[viewed], scores[viewed]),
                  n_viewed),
        MetricRow("oracle", "converted", "viewed", "AUC", None, auc(test.labels[viewed], oracle[viewed]), n_viewed),
    ]


def _offers(frame: pd.DataFrame, cut: pd.Timestamp, bundle, model: str) -> list[MetricRow]:
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
    rows = []
    for r in results:
        rows.append(MetricRow(model, "converted", r.offer_type, "wAUC", None, r.weighted_auc, r.offers))
        rows.append(MetricRow(model, "converted", f"{r.offer_type} (rarest quarter)", "wAUC", None,
                              r.rare_weighted_auc, r.rare_offers))
    return rows
