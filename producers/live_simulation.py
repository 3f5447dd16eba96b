"""`streamrec simulate`: stream synthetic traffic live (event time = now) or write it to a file."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from model.datasets.event_log import write_event_log
from producers.event_producer import BrokerUnavailable, EventProducer
from producers.pacing import Pacer
from producers.simulator import generate_events, world_for_events
from streamrec.events import Event, utc_now
from streamrec.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SimulationRun:
    run_id: str
    sent: int
    seconds: float
    truth_path: Path | None
    resent: int = 0  # sends of events kept through a broker outage (copies are dropped by the worker)
    lost: int = 0  # events never acknowledged: the redelivery buffer overflowed or the broker stayed down


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
    drain_timeout_s: float = 30.0,
) -> SimulationRun:
    """Emit synthetic events to Kafka until `n_events` are sent or `duration_s` has passed.

    The run keeps going through a broker outage; the result says how many events were re-sent and lost.
    """
    if n_events is None:
        n_events = int((rate or 2000) * (duration_s or 30))
    world, traffic = world_for_events(n_events, seed)
    if truth_out is not None:
        world.save_truth(truth_out)
    run_id = run_id or uuid.uuid4().hex[:8]
    pacer = Pacer(rate)
    started = time.monotonic()
    sent = 0
    # A broker outage does not stop the run: the producer keeps failed events and re-sends them on a new
    # client, and the close below waits up to `drain_timeout_s` for the last of them.
    producer = EventProducer(settings, client_id="streamrec-simulator")
    bar = tqdm(total=n_events, desc="simulate", unit="ev", disable=not progress)
    try:
        for event in live_copies(generate_events(world, traffic), run_id):
            if sent >= n_events or (duration_s is not None and time.monotonic() - started >= duration_s):
                break
            pacer.wait()
            producer.emit(event.model_copy(update={"ts": utc_now()}))
            sent += 1
            bar.update()
            if producer.failed and sent % 1000 == 0:
                bar.set_postfix(resent=producer.resent, lost=producer.lost, refresh=False)
    finally:
        bar.close()
        try:
            producer.close(timeout=drain_timeout_s)
        except BrokerUnavailable as error:
            log.error("simulation %s: %s", run_id, error)
    run = SimulationRun(
        run_id, sent, time.monotonic() - started, truth_out, resent=producer.resent, lost=producer.undelivered
    )
    if run.resent or run.lost:
        log.warning(
            "simulation %s rode out a broker outage: %d events sent, %d re-sent, %d lost",
            run_id,
            run.sent,
            run.resent,
            run.lost,
        )
    return run


def write_simulation(path: Path, n_events: int, seed: int = 7, **world_overrides: float) -> tuple[int, Path]:
    """Write `n_events` synthetic events (simulated event times) and the planted truth beside them; `world_overrides`
    are `WorldConfig` fields (`launched_share`, `popularity_drift`, ...)."""
    world, traffic = world_for_events(n_events, seed, **world_overrides)
    events = []
    for event in generate_events(world, traffic):
        events.append(event)
        if len(events) >= n_events:
            break
    truth_path = path.with_suffix(".truth.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    world.save_truth(truth_path, int(traffic.start.timestamp() * 1000), traffic.span_days, traffic.follow_workflow)
    return write_event_log(events, path), truth_path
