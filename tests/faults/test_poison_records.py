"""Records any producer can write (deep nesting, huge numbers, NaN, clocks in year 9999) never stop the group.

Three worker processes share the partitions; poison records are spread over every partition between known
good events. Each poison record must land in the dead-letter topic exactly once with a reason that names
what is wrong, every worker must still be running, and every good trigger must be notified once.
"""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest

from consumers.worker.dead_letter import DeadLetter
from producers.simulator import simulate
from streamrec.events import encode_event
from streamrec.kafka_clients import make_producer
from streamrec.topics import ensure_topics
from tests.faults.ledger import FaultRow, NotificationLedger, fault_scale, wait_for_log_line
from tests.pipeline_helpers import expected_triggers, read_topic, seed_catalogue, worker_process

pytestmark = pytest.mark.integration


def poison_records(valid: dict[str, object]) -> dict[str, tuple[bytes, str]]:
    """poison key -> (record value, a word the dead letter's reason must contain)."""

    def event(**changes: object) -> bytes:
        return json.dumps({**valid, **changes}).encode()

    def raw(**changes: str) -> bytes:  # values spliced in as raw JSON text (NaN, Infinity, huge numbers)
        body = json.dumps({**valid, **{k: "__RAW__" + k for k in changes}})
        for name, text in changes.items():
            body = body.replace(f'"__RAW__{name}"', text)
        return body.encode()

    deep = "[" * 1000 + "]" * 1000
    return {
        "deep-array": (deep.encode(), "nest"),
        "deep-field": (raw(page=deep), "nest"),
        "deep-object": (('{"a":' * 1000 + "1" + "}" * 1000).encode(), "nest"),
        "int-5000-digits": (raw(price="9" * 5000), "number"),
        "int-4301-digits-quantity": (raw(quantity="1" * 4301), "number"),
        "price-infinity": (raw(price="Infinity"), "price"),
        "price-nan": (raw(price="NaN"), "price"),
        "price-1e309": (raw(price="1e309"), "price"),
        "ts-year-9999": (event(ts="9999-12-31T23:59:59Z"), "ts"),
        "ts-year-1": (event(ts="0001-01-01T00:00:00Z"), "ts"),
        "ts-1969": (event(ts="1969-12-31T23:59:59Z"), "ts"),
        "nul-in-user-id": (event(user_id="u\x00x"), "user_id"),
        "newline-in-item-id": (event(item_id="p1\r\nSET x"), "item_id"),
        "quantity-2-63": (event(type="add_to_cart", quantity=2**63), "quantity"),
        "not-json": (b"\xff\xfe{", "JSON"),
    }


def test_poison_records_never_stop_a_group_of_three(delivery_settings, tmp_path, fault_table):
    settings = delivery_settings
    world, events = simulate(1500 * fault_scale(), seed=17, tools=200)
    seed_catalogue(settings, world)
    triggers = expected_triggers(events, settings.trigger_every_nth_page_view)
    valid = json.loads(encode_event(next(e for e in events if e.type == "page_view")))
    poison = poison_records({**valid, "event_id": "poison"})
    ensure_topics(settings)

    workers = [worker_process(settings, tmp_path / f"worker-{i}.log", max_poll_records=40) for i in range(3)]
    try:
        for i in range(3):
            wait_for_log_line(tmp_path / f"worker-{i}.log", "partitions assigned")
        producer = make_producer(settings, "poison-test", max_request_size=4_000_000)
        chunk = len(events) // len(poison)
        for i, (name, (value, _)) in enumerate(poison.items()):
            for event in events[i * chunk : (i + 1) * chunk]:
                producer.send(settings.events_topic, key=event.user_id.encode(), value=encode_event(event))
            # Spread the poison over the partitions: keys like real user ids.
            producer.send(settings.events_topic, key=f"poison-user-{name}".encode(), value=value)
        for event in events[len(poison) * chunk :]:
            producer.send(settings.events_topic, key=event.user_id.encode(), value=encode_event(event))
        producer.flush()
        producer.close()

        ledger = NotificationLedger(settings, triggers)
        counts = ledger.counts(timeout_s=120)
        letters = read_topic(settings, settings.dlq_topic, done=lambda recs: len(recs) >= len(poison),
                             timeout_s=30, settle_s=2.0)
        alive = [w.poll() is None for w in workers]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(30)

    fault_table.append(FaultRow(f"{len(poison)} poison records, 3 workers", settings.delivery, counts,
                                all(alive), 0.0 if all(alive) else None, "each poison record dead-lettered once"))
    logs = "\n".join((tmp_path / f"worker-{i}.log").read_text()[-1500:] for i in range(3))
    assert all(alive), f"a worker died: {alive}\n{logs}"
    dead = [DeadLetter.model_validate_json(r.value) for r in letters]
    per_key = Counter(d.key for d in dead)
    for name, (_, word) in poison.items():
        key = f"poison-user-{name}"
        assert per_key[key] == 1, f"{name}: {per_key[key]} dead letters"
        reason = next(d.reason for d in dead if d.key == key)
        assert word.lower() in reason.lower(), f"{name}: reason {reason!r} does not mention {word!r}"
    assert len(dead) == len(poison), f"healthy events were dead-lettered: {len(dead)} letters"
    counts.assert_exact(settings)

