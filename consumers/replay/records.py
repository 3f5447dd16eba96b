"""What a replay writes per notification: the notification as published, plus the model's deeper ranked list."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from streamrec.notifications import Notification


class ReplayRecord(BaseModel):
    """One notification and the ranked list behind it (`ranked` is deeper than the notified items, for metrics@k)."""

    model_config = ConfigDict(frozen=True)

    notification: Notification
    ranked: list[str]
    scores: list[float]


def write_records(records: Iterable[ReplayRecord], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as out:
        for record in records:
            out.write(record.model_dump_json() + "\n")
            count += 1
    return count


def read_records(path: Path) -> Iterator[ReplayRecord]:
    with path.open() as lines:
        for line in lines:
            if line.strip():
                yield ReplayRecord.model_validate(json.loads(line))
