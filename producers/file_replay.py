"""`streamrec replay-file`: stream a dataset file into the events topic (synthetic log or ASOS pairs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from tqdm import tqdm

from model.datasets import asos
from model.datasets.event_log import read_event_log
from producers.event_producer import EventProducer
from producers.pacing import Pacer
from streamrec.events import Event
from streamrec.settings import Settings


def detect_format(path: Path) -> str:
    """"asos" for the ASOS purchase pairs, else "event-log"."""
    if path.suffix == ".parquet" and "dummyUserId" in pq.read_schema(path).names:
        return "asos"
    return "event-log"


def file_events(path: Path, fmt: str = "auto") -> Iterator[Event]:
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "asos":
        return asos.purchase_events(path)
    if fmt == "event-log":
        return read_event_log(path)
    raise ValueError(f"unknown format {fmt!r}: expected auto, asos or event-log")


def replay_file(
    path: Path, settings: Settings, fmt: str = "auto", rate: float | None = None, limit: int | None = None,
    progress: bool = True,
) -> int:
    """Produce the file's events in file order (keyed by user); returns how many were sent."""
    pacer = Pacer(rate)
    sent = 0
    with EventProducer(settings, client_id="streamrec-replay-file") as producer:
        for event in tqdm(file_events(path, fmt), desc=f"replay {path.name}", unit="ev", disable=not progress):
            if limit is not None and sent >= limit:
                break
            pacer.wait()
            producer.emit(event)
            sent += 1
    return sent
