"""`streamrec dev up|status|down` starts only what is missing and stops only what it started; the brokers and
Redis servers the stack starts keep (or lose) data across a crash as documented."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from streamrec.dev_stack import KAFKA, TANSU, DevStack, LocalBroker, free_port, kafka_unavailable_reason, port_open
from streamrec.settings import Settings

pytestmark = pytest.mark.integration

needs_kafka = pytest.mark.skipif(kafka_unavailable_reason() is not None,
                                 reason=f"Apache Kafka unavailable: {kafka_unavailable_reason()}")


def _dev_settings(tmp_path, redis_url) -> Settings:
    return Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", redis_url=redis_url, dev_dir=tmp_path / "dev",
                    events_topic="dev-events", notifications_topic="dev-notifications", dlq_topic="dev-dlq")


def _wait_closed(port: int, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not port_open("127.0.0.1", port):
            return True
        time.sleep(0.1)
    return False


def _topics_listed(bootstrap: str, expected: int, timeout_s: float = 10) -> set[str]:
    """Topics the broker lists; Kafka's metadata catches up with a creation a moment after CreateTopics returns."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while len(topics := set(admin.list_topics())) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return topics
    finally:
        admin.close()


def test_dev_stack_starts_a_broker_uses_the_running_redis_and_stops_what_it_started(tmp_path, redis_url):
    settings = _dev_settings(tmp_path, redis_url)
    stack = DevStack(settings)
    try:
        broker, redis_status = stack.up()
        assert broker.answering and broker.pid is not None  # started by the stack
        assert broker.kind == (KAFKA if kafka_unavailable_reason() is None else TANSU)
        assert broker.kind in broker.describe()
        assert redis_status.answering and redis_status.pid is None  # the machine's Redis, left alone
        assert (tmp_path / "dev" / "broker.pid").exists() and (tmp_path / "dev" / "broker.log").exists()
        assert {"dev-events", "dev-notifications", "dev-dlq"} <= _topics_listed(settings.kafka_bootstrap, 3)
        again = DevStack(settings).up()  # idempotent: nothing new is started
        assert again[0].pid == broker.pid
        assert DevStack(settings).status()[0].kind == broker.kind  # `dev status` tells which broker runs
    finally:
        stopped = stack.down()
    assert any("broker" in s for s in stopped)
    assert _wait_closed(stack.broker_port)  # Kafka's clean shutdown takes a few seconds
    assert DevStack(settings).status()[1].answering  # Redis still up: it was not ours


def test_dev_stack_falls_back_to_tansu_and_says_why_without_kafka(tmp_path, redis_url, monkeypatch):
    monkeypatch.setenv("STREAMREC_KAFKA_LIBS", str(tmp_path / "no-jars"))
    stack = DevStack(_dev_settings(tmp_path, redis_url))
    try:
        broker, _ = stack.up()
        assert broker.answering and broker.kind == TANSU
        assert any("Tansu" in note and "no-jars" in note for note in stack.notes)
    finally:
        stack.down()
    assert _wait_closed(stack.broker_port)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, value)
    producer.flush()
    producer.close()


def _consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=15_000)
    try:
        values = []
        for record in consumer:
            values.append(record.value)
            if len(values) >= expected:
                break
        return values
    finally:
        consumer.close()


@needs_kafka
def test_apache_kafka_keeps_acknowledged_records_across_a_sigkill_and_restart(tmp_path):
    broker = LocalBroker(KAFKA, free_port(), tmp_path / "kafka", tmp_path / "broker.log").start()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic("durable", 2, 1)])
        admin.close()
        _produce(broker.bootstrap, "durable", [b"before-%d" % i for i in range(50)])
        broker.restart()  # SIGKILL, then the same port and data dir
        _produce(broker.bootstrap, "durable", [b"after-%d" % i for i in range(10)])
        values = _consume_all(broker.bootstrap, "durable", 60)
        assert sorted(values) == sorted([b"before-%d" % i for i in range(50)] + [b"after-%d" % i for i in range(10)])
    finally:
        broker.stop()
    assert not broker.running()


def test_private_redis_with_aof_keeps_writes_across_a_sigkill(private_redis_server):
    import redis

    durable, volatile = private_redis_server(aof=True), private_redis_server()
    for server in (durable, volatile):
        redis.Redis.from_url(server.url).set("k", "v")
        server.restart()
    assert redis.Redis.from_url(durable.url).get("k") == b"v"
    assert redis.Redis.from_url(volatile.url).get("k") is None
