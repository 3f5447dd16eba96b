"""A broker outage floods kafka-python's ERROR logs; the throttle lets one of each through per interval."""

from __future__ import annotations

import logging

from streamrec.log_throttle import RepeatThrottle


def _record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (), None)


def test_repeats_of_a_library_message_are_held_back_and_counted():
    throttle = RepeatThrottle(interval_s=60)
    first = _record("kafka.net.transport", "%s: socket disconnected")
    assert throttle.filter(first)
    assert not any(throttle.filter(_record("kafka.net.transport", "%s: socket disconnected")) for _ in range(50))
    assert throttle.filter(_record("kafka.cluster", "Metadata refresh failed"))  # another message passes
    throttle.interval_s = 0  # the interval is over
    later = _record("kafka.net.transport", "%s: socket disconnected")
    assert throttle.filter(later)
    assert "50 like it" in later.msg


def test_our_own_lines_are_never_throttled():
    throttle = RepeatThrottle(interval_s=60)
    assert all(throttle.filter(_record("consumers.worker.worker", "OUTAGE: %s")) for _ in range(5))
