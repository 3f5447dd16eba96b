"""`replay-file` streams dataset files into the events topic in file order, keyed by user."""

from __future__ import annotations

import pytest

from model.datasets import asos, shared_data_dir
from model.datasets.event_log import write_event_log
from producers.file_replay import detect_format, replay_file
from producers.simulator import simulate
from streamrec.events import parse_event
from streamrec.topics import ensure_topics
from tests.pipeline_helpers import read_topic

pytestmark = pytest.mark.integration


def _read_events(settings, n):
    records = read_topic(settings, settings.events_topic, done=lambda recs: len(recs) >= n, timeout_s=60)
    return [parse_event(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))], records


def test_synthetic_log_is_replayed_in_order_per_user(settings, tmp_path):
    _, events = simulate(500, seed=4)
    path = tmp_path / "log.parquet"
    write_event_log(events, path)
    ensure_topics(settings)
    assert replay_file(path, settings, progress=False) == 500
    replayed, records = _read_events(settings, 500)
    assert sorted(e.event_id for e in replayed) == sorted(e.event_id for e in events)
    for user in {e.user_id for e in events}:
        assert [e.event_id for e in replayed if e.user_id == user] == [e.event_id for e in events if e.user_id == user]
    assert all(r.key == parse_event(r.value).user_id.encode() for r in records)


@pytest.mark.data
def test_asos_purchase_pairs_become_purchase_events(settings):
    path = shared_data_dir() / "asos-dsf2020" / asos.TRAIN
    if not path.exists():
        pytest.skip(f"ASOS data not found at {path} (see ../shared/data/README.md)")
    assert detect_format(path) == "asos"
    ensure_topics(settings)
    assert replay_file(path, settings, limit=300, progress=False) == 300
    replayed, _ = _read_events(settings, 300)
    pairs = asos.load_pairs(path).head(300)
    assert {(e.user_id, e.item_id) for e in replayed} == set(zip(pairs.user_id, pairs.item_id, strict=True))
    assert {e.type for e in replayed} == {"purchase"}
