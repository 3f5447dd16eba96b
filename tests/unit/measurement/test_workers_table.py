"""`bench pipeline --workers 1,2,3`: one row per worker count, each read against the floor of its own run."""

from __future__ import annotations

from measurement.benchmarks.pipeline_benchmark import PhaseResult, pipeline_result, workers_result


def _run(workers: int, floor_ms: float, ours_ms: float, seconds: float) -> object:
    floor = PhaseResult("broker floor (2 hops)", 1000, 1000, 1000, 0.5, [floor_ms] * 1000)
    ours = PhaseResult(f"pipeline ({workers} workers)", 1000, 200, 200, seconds, [ours_ms] * 200)
    return pipeline_result([floor, ours], 2000)


def test_each_worker_count_is_a_row_against_its_own_floor():
    table = workers_result({1: _run(1, 10.0, 40.0, 1.0), 2: _run(2, 20.0, 30.0, 0.5)}, 2000, redis_masters=3,
                           redis_cpu_us={1: 80.0, 2: 95.5})
    one, two = table.rows["pipeline (1 workers)"], table.rows["pipeline (2 workers)"]
    assert (one["pipeline"], two["pipeline"]) == (1000.0, 2000.0)
    assert one["p99 / floor"] == 4.0 and two["p99 / floor"] == 1.5  # each against the floor measured beside it
    assert one["floor"] == 2000.0 and (one["workers"], two["workers"]) == (1, 2)
    assert "3 masters" in table.info["redis"]
    assert len(table.rows) == 2  # the floors are columns, not rows
    assert (one["redis cpu / event"], two["redis cpu / event"]) == (80.0, 95.5)


def test_redis_cpu_is_summed_over_the_servers():
    from measurement.benchmarks.pipeline_benchmark import redis_cpu_seconds

    class Server:
        def __init__(self, user: float, system: float) -> None:
            self.figures = {"used_cpu_user": user, "used_cpu_sys": system}

        def info(self, section: str) -> dict[str, float]:
            assert section == "cpu"
            return self.figures

    assert redis_cpu_seconds([Server(1.5, 0.5), Server(2.0, 1.0)]) == 5.0


def test_a_process_cpu_time_is_read_and_grows_with_work():
    import os
    import time

    from measurement.benchmarks.pipeline_benchmark import process_cpu_seconds

    before = process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn 0.3 s of CPU
        pass
    assert process_cpu_seconds(os.getpid()) - before >= 0.2
    assert process_cpu_seconds(2**22 + 12345) == 0.0  # no such process
