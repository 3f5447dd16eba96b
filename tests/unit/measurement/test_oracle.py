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


def test_the_next_tool_oracle_draws_as_the_simulator_does_and_its_workflow_only_twin_ignores_taste(tmp_path: Path):
    from streamrec.events import TOOL

    _, truth_path = write_simulation(tmp_path / "sim.parquet", 2_000, seed=5)
    world = SyntheticWorld.load_truth(truth_path)
    assert world.follow_workflow == 0.7  # the traffic's, kept with the truth
    finished = world.tool_ids[3]
    successors = world.tool_successors[3]
    full, workflow = OracleRecommender(world), OracleRecommender(world, knows_taste=False)

    def ranked(oracle: OracleRecommender, user: int) -> list[str]:
        request = RecommendationRequest(world.user_ids[user], 30, kind=TOOL, trigger_item=finished)
        return [item.item_id for item in oracle.recommend(request)]

    # Knowing the graph only: every user gets the successors in order of their planted probability.
    expected = [world.tool_ids[i] for i in np.argsort(-successors, kind="stable")]
    assert ranked(workflow, 0)[:3] == expected[:3] and ranked(workflow, 0) == ranked(workflow, 1)
    # Knowing tastes too: the mixture 0.7 x successor + 0.3 x taste, so users differ where the graph is flat.
    mixture = 0.7 * successors + 0.3 * world.user_tool_taste[0]
    assert ranked(full, 0)[:5] == [world.tool_ids[i] for i in np.argsort(-mixture, kind="stable")[:5]]
