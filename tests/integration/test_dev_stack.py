"""`streamrec dev up|status|down` starts only what is missing and stops only what it started."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient

from streamrec.dev_stack import DevStack, free_port, port_open
from streamrec.settings import Settings

pytestmark = pytest.mark.integration


def test_dev_stack_starts_a_broker_uses_the_running_redis_and_stops_what_it_started(tmp_path, redis_url):
    port = free_port()
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{port}", redis_url=redis_url, dev_dir=tmp_path / "dev",
                        events_topic="dev-events", notifications_topic="dev-notifications", dlq_topic="dev-dlq")
    stack = DevStack(settings)
    try:
        broker, redis_status = stack.up()
        assert broker.answering and broker.pid is not None  # started by the stack
        assert redis_status.answering and redis_status.pid is None  # the machine's Redis, left alone
        assert (tmp_path / "dev" / "broker.pid").exists() and (tmp_path / "dev" / "broker.log").exists()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            assert {"dev-events", "dev-notifications", "dev-dlq"} <= set(admin.list_topics())
        finally:
            admin.close()
        again = DevStack(settings).up()  # idempotent: nothing new is started
        assert again[0].pid == broker.pid
    finally:
        stopped = stack.down()
    assert any("broker" in s for s in stopped)
    for _ in range(50):
        if not port_open("127.0.0.1", port):
            break
        time.sleep(0.1)
    assert not port_open("127.0.0.1", port)
    assert DevStack(settings).status()[1].answering  # Redis still up: it was not ours
