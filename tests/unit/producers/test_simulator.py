"""The simulator plants structure that a recommender can find, deterministically."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from producers.simulator import TrafficConfig, simulate


def test_same_seed_same_traffic_other_seed_other_traffic():
    _, a = simulate(800, seed=3)
    _, b = simulate(800, seed=3)
    _, c = simulate(800, seed=4)
    assert a == b
    assert [e.model_dump() for e in a] != [e.model_dump() for e in c]


def test_purchases_are_sparse_like_a_real_shop_and_events_are_in_time_order():
    _, events = simulate(20_000, seed=1)
    counts = Counter(e.type for e in events)
    assert 0.015 <= counts["purchase"] / counts["page_view"] <= 0.04
    assert counts["task_completed"] > 0 and counts["session_start"] > 0
    assert all(a.ts <= b.ts for a, b in zip(events, events[1:], strict=False))


def test_users_view_their_planted_favourite_categories():
    world, events = simulate(20_000, seed=2)
    index = {u: i for i, u in enumerate(world.user_ids)}
    views = defaultdict(Counter)
    for e in events:
        if e.type == "page_view" and e.category:
            views[e.user_id][e.category] += 1
    agreement = []
    for user, counts in views.items():
        if sum(counts.values()) < 10:
            continue
        top_two = {world.category_names[c] for c in np.argsort(-world.user_category_taste[index[user]])[:2]}
        agreement.append(counts.most_common(1)[0][0] in top_two)
    assert len(agreement) > 50
    # A chooser blind to taste would hit 2 of 20 categories 10% of the time.
    assert np.mean(agreement) > 0.6


def test_tool_use_follows_planted_workflows():
    world, events = simulate(20_000, seed=5)
    tool_index = {t: i for i, t in enumerate(world.tool_ids)}
    last_tool: dict[str, int] = {}
    follows, total = 0, 0
    for e in events:
        if e.type != "task_completed":
            continue
        t = tool_index[e.tool_id]
        if e.session_id in last_tool:
            previous = last_tool[e.session_id]
            top_successors = set(np.argsort(-world.tool_successors[previous])[:3])
            follows += t in top_successors
            total += 1
        last_tool[e.session_id] = t
    assert total > 100
    assert follows / total > 0.4  # 3 of 30 tools by chance would be 10%


def _first_view_days(events) -> dict[str, float]:
    start = TrafficConfig().start  # the traffic's day 0, which launch days count from
    first: dict[str, float] = {}
    for e in events:
        if e.type == "page_view" and e.item_id:
            first.setdefault(e.item_id, (e.ts - start).total_seconds() / 86400)
    return first


def test_launched_products_are_never_seen_before_their_launch_and_some_launch_mid_stream():
    world, events = simulate(30_000, seed=6)
    traffic_span = 14.0  # TrafficConfig's default span, over which launches are spread
    launch = dict(zip(world.product_ids, world.launch_day(traffic_span), strict=True))
    first = _first_view_days(events)
    launched = [p for p, day in launch.items() if day > 0]
    assert 0.10 <= len(launched) / len(launch) <= 0.20  # the default share is about 15 %
    assert all(first[p] >= launch[p] for p in first if launch[p] > 0)
    seen_late = [p for p in launched if p in first and first[p] > 1.0]
    assert len(seen_late) > 20  # new products do get views once launched, mid-stream


def test_no_launches_without_a_launched_share_and_popularity_drifts_by_day():
    world, events = simulate(5_000, seed=6, launched_share=0.0)
    assert (world.launch_day(14.0) == 0).all()
    assert world.launched_by(0.0, 14.0).all()
    drifting, _ = simulate(500, seed=6, popularity_drift=0.2)
    still, _ = simulate(500, seed=6, popularity_drift=0.0)
    assert np.allclose(still.affinity(0, 10.0), still.affinity(0, 0.0))
    change = drifting.affinity(0, 10.0) - drifting.affinity(0, 0.0)
    assert np.allclose(change, drifting.product_trend * 10.0) and change.std() > 1.0  # products move apart


def test_launches_and_drift_do_not_change_the_rest_of_the_world():
    with_launches, _ = simulate(500, seed=8)
    without, _ = simulate(500, seed=8, launched_share=0.0, popularity_drift=0.0)
    assert np.array_equal(with_launches.user_category_taste, without.user_category_taste)
    assert np.array_equal(with_launches.product_factors, without.product_factors)
