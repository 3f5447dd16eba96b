"""Hypothesis strategies for what any producer or browser can send: hostile text, huge numbers, NaN, nesting."""

from __future__ import annotations

from hypothesis import strategies as st

EVENT_TYPES = ["page_view", "session_start", "session_end", "task_completed", "add_to_cart", "purchase"]
FIELDS = [
    "type", "user_id", "session_id", "event_id", "item_id", "tool_id", "ts", "price", "quantity", "page",
    "category", "brand", "task", "referrer", "device", "schema_version",
]

controls = st.sampled_from(["\x00", "\r", "\n", "\t", "\x7f", "\x85", "\u2028", "\ud800", "\udfff"])
hostile_text = st.text(alphabet=st.characters(codec="utf-8") | controls, max_size=50) | st.text(max_size=5000)
huge_ints = st.integers(min_value=-(10**30), max_value=10**30) | st.integers().map(lambda n: n * 10**40)
scalars = st.none() | st.booleans() | huge_ints | st.floats(allow_nan=True, allow_infinity=True) | hostile_text
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=30,
)


def near_events(user_ids: st.SearchStrategy[str] = st.just("u1"), extra_types: tuple[str, ...] = ()):
    """Objects shaped like events (a known or almost-known type, the ids) with hostile values in any field."""
    return st.fixed_dictionaries(
        {"type": st.sampled_from([*EVENT_TYPES, *extra_types]), "user_id": user_ids, "session_id": st.just("s1")},
        optional={name: json_values for name in FIELDS if name not in {"type", "user_id", "session_id"}},
    )
