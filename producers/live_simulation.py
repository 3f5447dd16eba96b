"""`streamrec simulate`: stream synthetic traffic live (event time = now) or write it to a file."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from model.datasets.event_log import write_event_log
from producers.event_producer import EventProducer
from producers.pacing import Pacer
from producers.simulator import generate_events, world_for_events
from streamrec.events import Event, utc_now
from streamrec.settings import Settings


@dataclass
class SimulationRun:
    run_id: str
    sent: int
    seconds: float
    truth_path: Path | None


def live_copies(events: Iterable[Event], run_id: str) -> Iterator[Event]:
    """The same traffic under run-scoped ids and with the emission time as event time.

    Run-scoped ids keep a second run from being dropped as redeliveries of the first.
    """
    for event in events:
        yield event.model_copy(
            update={
                "event_id": f"{run_id}-{event.event_id}",
                "session_id": f"{run_id}-{event.session_id}",
                "ts": utc_now(),
            }
        )


def stream_simulation(
    settings: Settings,
    n_events: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    seed: int = 7,
    run_id: str | None = None,
    truth_out: Path | None = None,
    progress: bool = True,
) -> SimulationRun:
    """Emit synthetic events to Kafka until `n_events` are sent or `duration_s` has passed."""
    if n_events is None:
        n_events = int((rate or 2000) * (duration_s or 30))
    world, traffic = world_for_events(n_events, seed)
    if truth_out is not None:
        world.save_truth(truth_out)
    run_id = run_id or uuid.uuid4().hex[:8]
    pacer = Pacer(rate)
    started = time.monotonic()
    sent = 0
    with EventProducer(settings, client_id="streamrec-simulator") as producer:
        bar = tqdm(total=n_events, desc="simulate", unit="ev", disable=not progress)
        for event in live_copies(generate_events(world, traffic), run_id):
            if sent >= n_events or (duration_s is not None and time.monotonic() - started >= duration_s):
                break
            pacer.wait()
            producer.emit(event.model_copy(update={"ts": utc_now()}))
            sent += 1
            bar.update()
        bar.close()
    return SimulationRun(run_id, sent, time.monotonic() - started, truth_out)


def write_simulation(path: Path, n_events: int, seed: int = 7) -> tuple[int, Path]:
    """Write `n_events` synthetic events (simulated event times) and the planted truth beside them."""
    world, traffic = world_for_events(n_events, seed)
    events = []
    for event in generate_events(world, traffic):
        events.append(event)
        if len(events) >= n_events:
            break
    truth_path = path.with_suffix(".truth.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    world.save_truth(truth_path)
    return write_event_log(events, path), truth_path
