"""The standard session-based protocol: filtering until stable, repeats collapsed, last-day split, prefixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from measurement.evaluation import session_protocol
from model.recommender import RecommendationRequest, Recommender, ScoredItem

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def clicks(sessions: dict[str, tuple[float, list[str]]]) -> pd.DataFrame:
    """session -> (start day offset, items)."""
    rows = []
    for sid, (day, items) in sessions.items():
        for i, item in enumerate(items):
            rows.append({"session_id": sid, "item_id": item, "ts": T0 + timedelta(days=day, minutes=i)})
    return pd.DataFrame(rows)


def test_consecutive_repeats_collapse_but_returns_to_an_item_stay():
    frame = session_protocol._ordered(clicks({"s": (0, ["a", "a", "b", "a", "a"])}))
    assert list(session_protocol.collapse_repeats(frame)["item_id"]) == ["a", "b", "a"]


def test_filtering_repeats_until_nothing_changes():
    # "rare" appears 4 times (< 5): dropping it leaves session s5 with one click, and dropping s5 leaves
    # "x" with 4 occurrences, which must go too in the next round; s6 is then too short as well.
    sessions = {f"s{i}": (0, ["a", "b", "rare" if i < 3 else "c"]) for i in range(5)}
    sessions |= {"s5": (0, ["x", "rare"]), "s6": (0, ["x", "d"])}
    sessions |= {f"t{i}": (0, ["x", "a"]) for i in range(3)}
    sessions |= {f"d{i}": (0, ["d", "a"]) for i in range(5)}
    out = session_protocol.filter_until_stable(clicks(sessions))
    assert "rare" not in set(out["item_id"])
    assert "x" not in set(out["item_id"])  # 5 before, 4 after the first round
    assert out["item_id"].value_counts().min() >= 5
    assert out["session_id"].value_counts().min() >= 2
    assert "s5" not in set(out["session_id"]) and "s6" not in set(out["session_id"])


def test_test_sessions_start_in_the_last_day_and_only_keep_items_known_to_train():
    sessions = {f"old{i}": (0, ["a", "b", "c"]) for i in range(5)}
    sessions["new1"] = (9.5, ["a", "new-item", "b"])  # unknown item removed, session keeps a -> b
    sessions["new2"] = (9.6, ["new-item", "c"])  # left with one click: dropped
    sessions["late"] = (8.0, ["b", "c"])  # started 2 days before the end: train
    split = session_protocol.split_last_days(clicks(sessions), days=1)
    assert set(split.test["session_id"]) == {"new1"}
    assert list(split.test["item_id"]) == ["a", "b"]
    assert "late" in set(split.train["session_id"])
    assert "new-item" not in set(split.test["item_id"])


def test_every_prefix_predicts_its_next_item():
    test = session_protocol._ordered(clicks({"s": (0, ["a", "b", "c"])}))
    prefixes = session_protocol.test_prefixes(test)
    assert [(p.items, p.target) for p in prefixes] == [(("a",), "b"), (("a", "b"), "c")]


class NextLetter(Recommender):
    """Recommends the letter after the session's last item, then 'z' (a model whose scores we know)."""

    name = "next-letter"

    def recommend(self, request: RecommendationRequest) -> list[ScoredItem]:
        last = request.context.recent_items[0]
        return [ScoredItem(chr(ord(last) + 1), 1.0), ScoredItem("z", 0.5)][: request.k]


def test_hr_and_mrr_at_20_of_a_known_model():
    test = session_protocol._ordered(clicks({"s": (0, ["a", "b", "d"]), "t": (0, ["x", "z"])}))
    prefixes = session_protocol.test_prefixes(test)  # a->b (rank 1), ab->d (miss), x->z (rank 2)
    rows = session_protocol.evaluate_next_item("m", NextLetter(), prefixes, ks=(1, 20), progress=False)
    value = {(r.metric, r.k): r.value for r in rows}
    assert value[("HR", 20)] == pytest.approx(2 / 3)
    assert value[("MRR", 20)] == pytest.approx((1 + 0 + 0.5) / 3)
    assert value[("HR", 1)] == pytest.approx(1 / 3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6)), min_size=0, max_size=120))
def test_filtered_data_meets_every_rule_at_once_and_filtering_again_changes_nothing(clicks_drawn):
    frame = pd.DataFrame(
        [{"session_id": f"s{s}", "item_id": f"i{i}", "ts": T0 + timedelta(seconds=n)}
         for n, (s, i) in enumerate(clicks_drawn)],
        columns=["session_id", "item_id", "ts"],
    )
    out = session_protocol.filter_until_stable(frame)
    if len(out):
        assert out["item_id"].value_counts().min() >= session_protocol.MIN_ITEM_SUPPORT
        assert out["session_id"].value_counts().min() >= session_protocol.MIN_SESSION_LENGTH
        repeats = (out["session_id"] == out["session_id"].shift()) & (out["item_id"] == out["item_id"].shift())
        assert not repeats.any()
    assert len(session_protocol.filter_until_stable(out)) == len(out)
