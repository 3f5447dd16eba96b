"""Option parsing shared by the commands (nothing here knows a domain)."""

from __future__ import annotations

from datetime import datetime


def utc_time(value: str | None) -> datetime | None:
    """An ISO 8601 time option as an aware UTC datetime (UTC unless it names a zone); None stays None."""
    if value is None:
        return None
    import pandas as pd

    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
