"""The oracle knows what was on sale when: it never recommends a product before its launch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from measurement.evaluation.oracle import OracleRecommender
from model.recommender import RecommendationRequest
from producers.live_simulation import write_simulation
from producers.synthetic_world import SyntheticWorld

DAY_MS = 86_400_000


def test_the_oracle_offers_a_product_only_from_its_launch_on(tmp_path: Path):
    _, truth_path = write_simulation(tmp_path / "sim.parquet", 3_000, seed=4)
    world = SyntheticWorld.load_truth(truth_path)
    assert world.traffic_start_ms is not None and world.traffic_span_days is not None
    launch = dict(zip(world.product_ids, world.launch_day(world.traffic_span_days), strict=True))
    oracle = OracleRecommender(world)
    k = len(world.product_ids)  # the whole catalogue on sale, in order
    for day in (0.5, 7.0, 13.5):
        request = RecommendationRequest(world.user_ids[0], k, now_ms=world.traffic_start_ms + int(day * DAY_MS))
        offered = {item.item_id for item in oracle.recommend(request)}
        on_sale = {p for p, launched in launch.items() if launched <= day}
        assert offered == on_sale
    assert np.mean([d > 0 for d in launch.values()]) > 0.05  # some products were launched mid-stream
