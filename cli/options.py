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


def int_list(value: str, option: str, minimum: int, too_small: str) -> tuple[int, ...]:
    """A comma-separated list of integers, each at least `minimum` (else a usage error saying `too_small`)."""
    import typer

    try:
        values = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError as error:
        raise typer.BadParameter(f"{value!r}: expected comma-separated integers", param_hint=option) from error
    if not values or min(values) < minimum:
        raise typer.BadParameter(too_small, param_hint=option)
    return values
