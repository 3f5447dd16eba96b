"""`streamrec bench loop`: the worker's loop on a real Redis without the broker, and its digest of what users are
sent (the check that a change meant only to be faster sends the same)."""

from __future__ import annotations

import hashlib
import uuid

import redis

from measurement.benchmarks.loop_benchmark import loop_result, run_loop
from measurement.benchmarks.pipeline_benchmark import bench_traffic
from streamrec.settings import Settings


def test_the_loop_sends_the_same_run_after_run_other_traffic_differs_and_no_key_is_left(redis_url, tmp_path):
    settings = Settings(redis_url=redis_url, key_prefix=f"test:{uuid.uuid4().hex[:10]}:",
                        model_dir=tmp_path / "models")  # no saved model: the streaming model serves
    _, events = bench_traffic(1500)
    first = run_loop(settings, events, 250, dump=tmp_path / "first.jsonl")
    second = run_loop(settings, events, 250)
    assert first.notifications > 20 and first.events == 1500 and first.batches == 6
    assert (second.digest, second.notifications) == (first.digest, first.notifications)
    sent = (tmp_path / "first.jsonl").read_bytes()
    assert hashlib.sha256(sent).hexdigest()[:16] == first.digest and sent.count(b"\n") == first.notifications
    other = run_loop(settings, bench_traffic(1500, seed=18)[1], 250)
    assert other.digest != first.digest
    assert not list(redis.Redis.from_url(redis_url).scan_iter(match=f"{settings.key_prefix}*"))
    table = loop_result(first)
    assert table.rows["redis apply"]["calls"] == 6 and table.info["served model"] == first.served
    assert 0 < table.rows["recommend"]["cpu per call"] <= table.rows["recommend"]["per call"] + 1
