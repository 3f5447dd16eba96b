"""The standard session-based protocol, on any (session_id, item_id, ts) frame, comparable with published tables.

1. collapse consecutive repeats of an item in a session; drop items seen fewer than 5 times and sessions
   shorter than 2, again and again until nothing changes;
2. test = sessions that start in the last `days` day(s); train = the rest; test items unknown to train
   are removed, and test sessions left shorter than 2 dropped;
3. every prefix of a test session predicts its next item; HR@20 and MRR@20 over the full catalogue
   (no sampled negatives, nothing excluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from model.interactions import COLUMNS
from model.metrics import KS, MetricRow, coverage_at_k, rows_for
from model.recommender import RecommendationRequest, Recommender
from streamrec.session_store import SessionContext

MIN_ITEM_SUPPORT = 5
MIN_SESSION_LENGTH = 2


@dataclass(frozen=True)
class SessionPrefix:
    session_id: str
    items: tuple[str, ...]  # oldest first
    target: str
    ts_ms: int  # time of the last prefix item


@dataclass(frozen=True)
class SessionSplit:
    train: pd.DataFrame
    test: pd.DataFrame


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[["session_id", "item_id", "ts"]].astype({"session_id": str, "item_id": str})
    return frame.sort_values(["session_id", "ts"], kind="mergesort").reset_index(drop=True)


def collapse_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop a click that repeats the session's previous item (frame ordered by session, then time)."""
    same = (frame["session_id"] == frame["session_id"].shift()) & (frame["item_id"] == frame["item_id"].shift())
    return frame[~same].reset_index(drop=True)


def filter_until_stable(
    frame: pd.DataFrame, min_item_support: int = MIN_ITEM_SUPPORT, min_session_length: int = MIN_SESSION_LENGTH
) -> pd.DataFrame:
    """Collapse repeats, drop rare items and short sessions, repeatedly until the frame stops changing."""
    frame = _ordered(frame)
    while True:
        before = len(frame)
        frame = collapse_repeats(frame)
        support = frame["item_id"].map(frame["item_id"].value_counts())
        frame = frame[support >= min_item_support]
        length = frame["session_id"].map(frame["session_id"].value_counts())
        frame = frame[length >= min_session_length].reset_index(drop=True)
        if len(frame) == before:
            return frame


def split_last_days(frame: pd.DataFrame, days: float = 1.0) -> SessionSplit:
    """Test = sessions starting within `days` of the last event; test items absent from train removed."""
    frame = _ordered(frame)
    starts = frame.groupby("session_id")["ts"].min()
    cut = frame["ts"].max() - pd.Timedelta(days=days)
    test_sessions = set(starts[starts >= cut].index)
    in_test = frame["session_id"].isin(test_sessions)
    train, test = frame[~in_test].reset_index(drop=True), frame[in_test]
    test = test[test["item_id"].isin(set(train["item_id"]))]
    test = collapse_repeats(test.reset_index(drop=True))
    length = test["session_id"].map(test["session_id"].value_counts())
    return SessionSplit(train, test[length >= MIN_SESSION_LENGTH].reset_index(drop=True))


def prepare(frame: pd.DataFrame, days: float = 1.0) -> SessionSplit:
    """Steps 1 and 2 of the protocol."""
    return split_last_days(filter_until_stable(frame), days)


def test_prefixes(test: pd.DataFrame) -> list[SessionPrefix]:
    """Every prefix of every test session with its next item (sessions in time order)."""
    out: list[SessionPrefix] = []
    ms = ((pd.to_datetime(test["ts"], utc=True) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1))
    test = test.assign(ts_ms=ms.astype("int64"))
    for session, group in test.groupby("session_id", sort=False):
        items = list(group["item_id"])
        times = list(group["ts_ms"])
        for i in range(1, len(items)):
            out.append(SessionPrefix(str(session), tuple(items[:i]), items[i], int(times[i - 1])))
    return out


def train_interactions(train: pd.DataFrame) -> pd.DataFrame:
    """The training clicks as the interactions frame every `fit` takes (page views; session = user)."""
    frame = pd.DataFrame(
        {
            "event_id": [f"click-{i}" for i in range(len(train))],
            "user_id": train["session_id"].to_numpy(),
            "session_id": train["session_id"].to_numpy(),
            "ts": pd.to_datetime(train["ts"], utc=True).to_numpy(),
            "event_type": "page_view",
            "kind": "product",
            "item_id": train["item_id"].to_numpy(),
        }
    )
    return frame.reindex(columns=COLUMNS)


def prefix_request(prefix: SessionPrefix, k: int) -> RecommendationRequest:
    """What a model sees for one prefix: the session so far (newest first), as the worker's context would be."""
    recent = tuple(reversed(prefix.items[-50:]))
    context = SessionContext(
        user_id=prefix.session_id, session_id=prefix.session_id, events=len(prefix.items),
        page_views=len(prefix.items), recent_items=recent, user_recent_items=recent,
        started_ms=prefix.ts_ms, last_ms=prefix.ts_ms,
    )
    return RecommendationRequest(
        user_id=prefix.session_id, k=k, context=context, now_ms=prefix.ts_ms, trigger_item=prefix.items[-1]
    )


def evaluate_next_item(
    model_name: str, recommender: Recommender, prefixes: Sequence[SessionPrefix], ks: Sequence[int] = KS,
    catalogue_size: int | None = None, batch: int = 512, progress: bool = True,
) -> list[MetricRow]:
    """HR/MRR/NDCG@k of the next item over the full catalogue, plus coverage@k."""
    depth = max(ks)
    pairs: list[tuple[list[str], set[str]]] = []
    for start in tqdm(range(0, len(prefixes), batch), desc=f"{model_name}: next item", unit="batch",
                      disable=not progress):
        chunk = prefixes[start : start + batch]
        ranked = recommender.recommend_batch([prefix_request(p, depth) for p in chunk])
        pairs += [([s.item_id for s in items], {p.target}) for p, items in zip(chunk, ranked, strict=True)]
    rows = rows_for(model_name, "next", "all", pairs, ks)
    rows = [r for r in rows if r.metric in ("HR", "MRR", "NDCG")]
    if catalogue_size:
        rows += [MetricRow(model_name, "all", "all", "coverage", k,
                           coverage_at_k([p[0] for p in pairs], catalogue_size, k), len(pairs)) for k in ks]
    return rows
