"""ASOS DSF2020 purchase pairs (`../shared/data/asos-dsf2020`): user id bytes + product id, no time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from streamrec.events import Purchase

TRAIN = "dsf_asos_train_with_alphanumeric_dummy_ids.parquet"
VALID = "dsf_asos_valid_with_alphanumeric_dummy_ids.parquet"
# No timestamps in the data: file order is kept by spacing rows 1 ms apart from a fixed origin.
ORIGIN = datetime(2020, 1, 1, tzinfo=UTC)


def load_pairs(path: Path) -> pd.DataFrame:
    """(user_id, item_id) strings in file order."""
    frame = pd.read_parquet(path)
    users = frame["dummyUserId"].map(lambda v: v.decode() if isinstance(v, bytes) else str(v))
    return pd.DataFrame({"user_id": users, "item_id": frame["productId"].astype(str)})


def purchase_events(path: Path, origin: datetime = ORIGIN) -> Iterator[Purchase]:
    """Each row as a `purchase` event; ids are stable so a re-run replay is idempotent."""
    pairs = load_pairs(path)
    split = path.stem.split("_")[2] if path.stem.startswith("dsf_asos_") else path.stem
    for i, (user, item) in enumerate(zip(pairs["user_id"], pairs["item_id"], strict=True)):
        yield Purchase(
            event_id=f"asos-{split}-{i}",
            user_id=user,
            session_id=f"asos-{user}",
            item_id=item,
            ts=origin + timedelta(milliseconds=i),
        )
