"""Producers rebuild their Kafka client after it fails (a broker restart can leave one fatal) and lose nothing.

Fake kafka-python producers stand in for the broker: one that acknowledges everything, one whose `send`
raises (closed or fatal state), one whose deliveries fail.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from kafka.errors import IllegalStateError, KafkaError, KafkaTimeoutError
from kafka.future import Future

from producers import event_producer
from producers.collector import kafka_sink
from producers.collector.kafka_sink import BrokerUnavailable as SinkUnavailable
from producers.collector.kafka_sink import KafkaSink
from producers.event_producer import BrokerUnavailable, EventProducer
from streamrec.events import EventDecodeError, PageView
from streamrec.settings import Settings


class FakeFuture(Future):
    def get(self, timeout: float | None = None) -> object:
        if self.exception is not None:
            raise self.exception
        return self.value


class FakeProducer:
    """`mode`: "ok" acknowledges, "raise" fails in send (fatal/closed), "fail" fails each delivery."""

    def __init__(self, mode: str, sent: list[bytes]) -> None:
        self.mode, self.sent, self.closed = mode, sent, False

    def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int) -> FakeFuture:
        if self.closed:
            raise IllegalStateError("KafkaProducer already closed!")
        if self.mode == "raise":
            raise KafkaError(
                "Cannot perform send because at least one previous transactional or idempotent "
                "request has failed with errors."
            )
        future = FakeFuture()
        if self.mode == "fail":
            return future.failure(KafkaTimeoutError("Expiring 1 record(s): delivery timeout"))
        self.sent.append(value)
        return future.success(object())

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class ProducerFactory:
    """Stands in for `make_producer`: hands out producers in the modes given, then healthy ones."""

    def __init__(self, *modes: str) -> None:
        self.modes = list(modes)
        self.sent: list[bytes] = []
        self.made: list[FakeProducer] = []
        self.lock = threading.Lock()

    def __call__(self, settings: Settings, client_id: str, **options: object) -> FakeProducer:
        with self.lock:
            mode = self.modes.pop(0) if self.modes else "ok"
        if mode == "down":
            raise KafkaTimeoutError("Bootstrap timed out")
        producer = FakeProducer(mode, self.sent)
        self.made.append(producer)
        return producer


@pytest.fixture
def settings() -> Settings:
    return Settings(outage_backoff_s=0.01, outage_backoff_max_s=0.05, events_topic="events-unit")


def page_views(n: int, tag: str = "e", **fields: object) -> list[PageView]:
    return [
        PageView(event_id=f"{tag}{i}", user_id=f"u{i % 3}", session_id="s", item_id=f"p{i}", **fields) for i in range(n)
    ]


def ids(values: list[bytes]) -> set[str]:
    return {PageView.model_validate_json(v).event_id for v in values}


# --- EventProducer -------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["raise", "fail"])
def test_sdk_rebuilds_a_failed_producer_and_delivers_every_event(settings, monkeypatch, failing):
    factory = ProducerFactory("ok", failing, "down", "down")  # healthy, then fatal, then 2 failed rebuilds
    monkeypatch.setattr(event_producer, "make_producer", factory)
    producer = EventProducer(settings)
    producer._producer.mode = failing  # the broker restarts under a producer that was working
    events = page_views(500)
    producer.emit_many(events)
    producer.flush(timeout=10)
    assert ids(factory.sent) == {e.event_id for e in events}
    assert producer.delivered == 500 and producer.lost == 0
    assert producer.resent >= 500 - 1
    assert factory.made[0].closed  # the fatal client was closed, not leaked
    producer.close()


def test_sdk_keeps_one_users_order_across_the_outage(settings, monkeypatch):
    factory = ProducerFactory("ok", "down")
    monkeypatch.setattr(event_producer, "make_producer", factory)
    with EventProducer(settings) as producer:
        events = page_views(300)
        producer.emit_many(events[:100])
        producer._producer.mode = "raise"
        producer.emit_many(events[100:])
    delivered = [PageView.model_validate_json(v).event_id for v in factory.sent]
    assert delivered == [e.event_id for e in events]


def test_flush_names_the_undelivered_events_while_the_broker_stays_down(settings, monkeypatch):
    factory = ProducerFactory("raise", *["down"] * 1000)
    monkeypatch.setattr(event_producer, "make_producer", factory)
    producer = EventProducer(settings)
    producer.emit_many(page_views(40))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="40 events not delivered: 40 still pending"):
        producer.flush(timeout=0.5)
    assert time.monotonic() - started < 3
    factory.modes.clear()  # the broker is back: the kept events go out on a rebuilt client
    producer.flush(timeout=10)
    assert ids(factory.sent) == {f"e{i}" for i in range(40)}
    producer.close()


def test_a_full_redelivery_buffer_loses_events_and_says_so(settings, monkeypatch):
    factory = ProducerFactory("raise", *["down"] * 1000)
    monkeypatch.setattr(event_producer, "make_producer", factory)
    given_up = []
    producer = EventProducer(settings, redelivery_buffer=10, on_delivery=lambda e, err: given_up.append(err))
    producer.emit_many(page_views(25))
    assert producer.lost == 15 and len(given_up) == 15 and all(err is not None for err in given_up)
    with pytest.raises(BrokerUnavailable, match="15 lost"):
        producer.flush(timeout=0.2)
    factory.modes.clear()
    with pytest.raises(BrokerUnavailable, match="15 events not delivered: 0 still pending"):
        producer.flush(timeout=10)
    assert len(factory.sent) == 10
    with pytest.raises(BrokerUnavailable):
        producer.close(timeout=0.1)


def test_emit_refuses_event_times_outside_the_policy_before_sending(settings, monkeypatch):
    factory = ProducerFactory()
    monkeypatch.setattr(event_producer, "make_producer", factory)
    now = datetime.now(UTC)
    with EventProducer(settings) as producer:
        with pytest.raises(EventDecodeError, match="ahead of receipt"):
            producer.emit(page_views(1, "future", ts=now + timedelta(hours=2))[0])
        with pytest.raises(EventDecodeError, match="before the earliest"):
            producer.emit(page_views(1, "ancient", ts=datetime(1999, 1, 1, tzinfo=UTC))[0])
        producer.emit(page_views(1, "replay2019", ts=datetime(2019, 6, 1, tzinfo=UTC))[0])  # history is fine
        producer.emit(page_views(1, "skewed", ts=now + timedelta(seconds=60))[0])  # within the skew
    assert ids(factory.sent) == {"replay20190", "skewed0"}
    assert producer.emitted == 2


# --- KafkaSink (collector) ------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["raise", "fail"])
def test_collector_sink_drops_a_failed_producer_and_recovers(settings, monkeypatch, failing):
    factory = ProducerFactory("ok")
    monkeypatch.setattr(kafka_sink, "make_producer", factory)
    sink = KafkaSink(settings, timeout_s=1, hold_off_s=0.05)
    sink.deliver(page_views(2, "a"))
    assert sink.last_error is None
    factory.made[0].mode = failing  # the broker restarted: this client can no longer send
    with pytest.raises(SinkUnavailable):
        sink.deliver(page_views(2, "b"))
    assert factory.made[0].closed
    assert sink.last_error is not None and not sink.healthy
    factory.modes = ["down"]  # first rebuild finds no broker: still unhealthy
    time.sleep(0.06)
    with pytest.raises(SinkUnavailable):
        sink.deliver(page_views(2, "b"))
    assert sink.last_error is not None
    time.sleep(0.06)
    sink.deliver(page_views(2, "b"))
    assert sink.last_error is None and sink.healthy
    assert len(factory.made) == 2
    assert ids(factory.sent) == {"a0", "a1", "b0", "b1"}
    sink.close()


def test_collector_sink_stays_unhealthy_while_every_delivery_fails(settings, monkeypatch):
    factory = ProducerFactory("raise", "raise", "raise")
    monkeypatch.setattr(kafka_sink, "make_producer", factory)
    sink = KafkaSink(settings, timeout_s=1, hold_off_s=0.0)
    for _ in range(3):
        with pytest.raises(SinkUnavailable):
            sink.deliver(page_views(1))
        assert sink.last_error is not None
    assert len(factory.made) == 3 and all(p.closed for p in factory.made)  # a fresh client each time
