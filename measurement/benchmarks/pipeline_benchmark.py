"""`streamrec bench`: drive the live pipeline and measure throughput and latency beside the broker's floor.

Two phases over the same broker, client settings, rate and event payloads, in isolated topics and keys:
  floor    -- events -> relay (consume, produce, flush, commit; no work) -> measuring consumer: two hops;
  pipeline -- events -> worker process(es) (Redis, triggers, recommend) -> notifications -> measuring consumer.
Latency is wall-clock receipt minus the event time stamped at send. Figures are printed and written by the one
report writer (`measurement.report`: bench.md, .csv, .json and a PNG of the latency distributions).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import redis
from tqdm import tqdm

from consumers.worker.triggers import expected_trigger_ids
from measurement.benchmarks.latency import LATENCY_COLUMNS, latency_figures
from measurement.benchmarks.profiling import profile_result, start_profiles, stop_profiles
from measurement.report import BenchmarkResult, render_markdown, write_report
from model.baselines.session_cooccurrence import SessionCooccurrenceRecommender
from producers.live_simulation import live_copies
from producers.pacing import Pacer
from producers.simulator import simulate
from producers.synthetic_world import SyntheticWorld
from streamrec.dev_stack import spawn_with_settings
from streamrec.events import PRODUCT, TOOL, Event, PageView, TaskCompleted, encode_event, utc_now
from streamrec.kafka_clients import assign_whole_topic, make_consumer, make_producer
from streamrec.session_store import SessionStore
from streamrec.settings import Settings
from streamrec.topics import TopicSpec, ensure_topics


@dataclass
class PhaseResult:
    """One phase's raw measurement: what was sent, what came out, and every record's latency."""

    name: str
    sent: int
    expected: int
    received: int
    seconds: float  # first send to last expected arrival
    latencies_ms: list[float] = field(default_factory=list)
    worker_cpu_s: float | None = None  # CPU the workers used while the events flowed (user + system)

    @property
    def throughput(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def pipeline_result(results: list[PhaseResult], rate: float | None, served: str = "",
                    commit_mode: str | None = None) -> BenchmarkResult:
    """The phases as one table: throughput and latency percentiles, the pipeline's p99 beside the floor's;
    `served` names the model the workers served (it goes in the table's header)."""
    units = {"events": "count", "expected": "count", "received": "count", "throughput": "events/s",
             **LATENCY_COLUMNS, "worker cpu / event": "µs"}
    rows = {r.name: {"events": r.sent, "expected": r.expected, "received": r.received, "throughput": r.throughput,
                     **latency_figures(r.latencies_ms),
                     "worker cpu / event": r.worker_cpu_s * 1e6 / r.sent if r.worker_cpu_s and r.sent else None}
            for r in results}
    return BenchmarkResult(
        title=f"streamrec latency at {rate or 'max'} events/s", row_label="phase", units=units, rows=rows,
        digits={"throughput": 1, "worker cpu / event": 1}, floor=results[0].name if results else None,
        compare=["p99"],
        info={"target rate": f"{rate or 'max'} events/s", "latency": "from event time to receipt",
              **({"served model": served} if served else {}),
              **({"offset commits (floor and workers)": commit_mode} if commit_mode else {})},
        samples={r.name: r.latencies_ms for r in results}, samples_label="latency from event time (ms)",
    )


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def redis_cpu_seconds(servers: Sequence[redis.Redis]) -> float:
    """CPU seconds the Redis servers have used so far (user and system, main thread and others), summed."""
    total = 0.0
    for server in servers:
        cpu = server.info("cpu")
        total += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return total


def workers_result(results: dict[int, BenchmarkResult], rate: float | None, redis_masters: int = 0,
                   redis_cpu_us: dict[int, float] | None = None) -> BenchmarkResult:
    """One row per worker count (from each count's own run): the floor's and the pipeline's events/s and p99, and
    the Redis CPU each event cost (microseconds, over every master)."""
    rows: dict[str, dict[str, float | int | None]] = {}
    for count, result in results.items():
        floor = result.rows[result.floor] if result.floor else {}
        for phase, row in result.rows.items():
            if phase == result.floor:
                continue
            rows[phase] = {
                "workers": count, "floor": floor.get("throughput"), "pipeline": row.get("throughput"),
                "p50": row.get("p50"), "p99": row.get("p99"), "floor p99": floor.get("p99"),
                "p99 / floor": (row["p99"] / floor["p99"]) if floor.get("p99") and row.get("p99") else None,
                "worker cpu / event": row.get("worker cpu / event"),
                "redis cpu / event": (redis_cpu_us or {}).get(count),
            }
    where = f"a local Redis Cluster of {redis_masters} masters" if redis_masters else "the configured Redis"
    return BenchmarkResult(
        title=f"streamrec by worker count at {rate or 'max'} events/s", row_label="run",
        units={"workers": "count", "floor": "events/s", "pipeline": "events/s", "p50": "ms", "p99": "ms",
               "floor p99": "ms", "p99 / floor": "x", "worker cpu / event": "µs", "redis cpu / event": "µs"},
        rows=rows, digits={"floor": 1, "pipeline": 1, "p50": 1, "p99": 1, "floor p99": 1, "p99 / floor": 2,
                           "worker cpu / event": 1, "redis cpu / event": 1},
        info={"target rate": f"{rate or 'max'} events/s", "redis": where,
              "note": "each count is its own run: the floor is measured beside it"},
    )


class LatencyCollector(threading.Thread):
    """Consumes a topic and records (id, latency) for records whose id is wanted."""

    def __init__(self, settings: Settings, topic: str, extract: callable) -> None:
        super().__init__(daemon=True)
        self.consumer = make_consumer(settings, None, "bench-reader")
        if not assign_whole_topic(self.consumer, topic):
            raise TimeoutError(f"topic {topic} does not exist")
        self.extract = extract  # value -> (id, event time)
        self.arrivals: dict[str, tuple[float, float]] = {}  # id -> (arrival wall time, latency ms)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for records in self.consumer.poll(timeout_ms=50).values():
                now = time.time()
                for record in records:
                    key, event_time = self.extract(record.value)
                    if key not in self.arrivals:
                        self.arrivals[key] = (now, (now - event_time.timestamp()) * 1000.0)
        self.consumer.close()

    def wait_for(self, ids: set[str], timeout_s: float, idle_s: float | None = None) -> bool:
        """Wait until every id arrived, or `timeout_s` passed, or (with `idle_s`) nothing new came for that long."""
        deadline = time.monotonic() + timeout_s
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            if ids <= self.arrivals.keys():
                return True
            if len(self.arrivals) != last_count:
                last_count, last_change = len(self.arrivals), time.monotonic()
            elif idle_s is not None and time.monotonic() - last_change > idle_s:
                return False
            time.sleep(0.02)
        return False


def _event_id_and_ts(value: bytes) -> tuple[str, datetime]:
    payload = json.loads(value)
    return payload["event_id"], datetime.fromisoformat(payload["ts"])


def _trigger_id_and_ts(value: bytes) -> tuple[str, datetime]:
    payload = json.loads(value)
    return payload["trigger_event_id"], datetime.fromisoformat(payload["trigger_ts"])


def _send(settings: Settings, topic: str, events: list[Event], rate: float | None, desc: str) -> float:
    """Send with event time = now; returns the wall time of the first send."""
    producer = make_producer(settings, "bench-producer")
    pacer = Pacer(rate)
    started = time.time()
    for event in tqdm(events, desc=desc, unit="ev", leave=False):
        pacer.wait()
        stamped = event.model_copy(update={"ts": utc_now()})
        producer.send(topic, key=stamped.user_id.encode(), value=encode_event(stamped))
    producer.flush()
    producer.close()
    return started


def _warm_up(settings: Settings, topic: str, collector: LatencyCollector, make_event: callable, timeout_s=60) -> None:
    """Send probe events until one comes out the other end: group joins and fetch sessions are settled."""
    producer = make_producer(settings, "bench-warmup")
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            probe = make_event()
            producer.send(topic, key=probe.user_id.encode(), value=encode_event(probe))
            producer.flush()
            if collector.wait_for({probe.event_id}, 1.0):
                return
        raise TimeoutError(f"nothing came through {topic} within {timeout_s}s (see the logs under the bench folder)")
    finally:
        producer.close()


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_traffic(n_events: int, seed: int = 17) -> tuple[SyntheticWorld, list[Event]]:
    """The bench's shop and its first `n_events`, with the simulator's own times. A tool suite large enough that no
    user exhausts it (an exhausted user is, rightly, not notified)."""
    return simulate(n_events, seed, tools=200)


def served_settings(settings: Settings, model: str | None = None, model_dir: Path | None = None) -> Settings:
    """The settings the bench's workers run under: `model` as the streaming model, `model_dir` as where saved
    models are served from (each unset: what `streamrec worker` would serve under `settings`)."""
    update: dict[str, object] = {}
    if model is not None:
        update["streaming_model"] = model
    if model_dir is not None:
        update["model_dir"] = model_dir
    return settings.model_copy(update=update) if update else settings


def run_benchmark(
    settings: Settings, n_events: int, rate: float | None, workers: int, out_dir: Path,
    deliveries: tuple[str, ...] = ("at-least-once",), profile: bool = False,
) -> BenchmarkResult:
    """The broker's floor, then the pipeline once per delivery mode, on the same events in one run (with
    `profile`, py-spy samples each worker while the events flow: `measurement.benchmarks.profiling`)."""
    from model.serving import served_model_name

    rate = rate or None
    out_dir.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    bench = settings.model_copy(update={
        "events_topic": f"bench-{run}-events", "notifications_topic": f"bench-{run}-notifications",
        "dlq_topic": f"bench-{run}-dlq", "consumer_group": f"bench-{run}-workers", "key_prefix": f"bench:{run}:",
    })
    floor_in, floor_out = f"bench-{run}-floor-in", f"bench-{run}-floor-out"
    ensure_topics(bench)
    ensure_topics(bench, [TopicSpec(floor_in, bench.events_partitions, bench.replication_factor, {}),
                          TopicSpec(floor_out, bench.notifications_partitions, bench.replication_factor, {})])

    world, generated = bench_traffic(n_events)
    events = list(live_copies(generated, run))
    client = bench.redis_client()
    results: list[PhaseResult] = []
    modes = [_mode_settings(bench, run, delivery) for delivery in deliveries]
    try:
        # Phase 1: the broker's floor (two hops through a do-nothing relay).
        relay_args = ["-m", "measurement.benchmarks.benchmark_relay", floor_in, floor_out, f"bench-{run}-relay"]
        relay = spawn_with_settings(relay_args, bench, out_dir / "relay.log")
        collector = LatencyCollector(bench, floor_out, _event_id_and_ts)
        collector.start()
        try:
            _warm_up(bench, floor_in, collector, lambda: PageView(user_id="bench-probe", session_id="probe"))
            started = _send(bench, floor_in, events, rate, "floor")
            ids = {e.event_id for e in events}
            collector.wait_for(ids, 300, idle_s=10)
            results.append(_phase("broker floor (2 hops)", events, ids, collector, started))
        finally:
            collector.stop.set()
            _stop([relay])

        # Phase 2: the pipeline, once per delivery mode (own topics, group and Redis prefix each).
        for mode in modes:
            ensure_topics(mode)
            catalogue = SessionCooccurrenceRecommender(client, mode.key_prefix)
            catalogue.seed_catalogue(PRODUCT, world.product_ids)
            catalogue.seed_catalogue(TOOL, world.tool_ids)
            results.append(_pipeline_phase(mode, world, events, rate, workers, out_dir, profile))
    finally:
        for mode in modes:
            SessionStore(client, mode).delete_namespace()
    return _report(results, rate, out_dir, served_model_name(settings), settings.commit_mode)


def _mode_settings(bench: Settings, run: str, delivery: str) -> Settings:
    tag = "eos" if delivery == "exactly-once" else "alo"
    return bench.model_copy(update={
        "delivery": delivery, "events_topic": f"bench-{run}-{tag}-events",
        "notifications_topic": f"bench-{run}-{tag}-notifications", "dlq_topic": f"bench-{run}-{tag}-dlq",
        "consumer_group": f"bench-{run}-{tag}-workers", "key_prefix": f"bench:{run}:{tag}:",
    })


def _pipeline_phase(
    mode: Settings, world, events: list[Event], rate: float | None, workers: int, out_dir: Path,
    profile: bool = False,
) -> PhaseResult:
    tag = mode.delivery
    reports = [out_dir / f"stages-{tag}-{i}.json" for i in range(workers)]
    worker_processes = [spawn_with_settings(["-m", "cli", "worker"], mode.model_copy(update={"stage_report": path}),
                                            out_dir / f"worker-{tag}-{i}.log")
                        for i, path in enumerate(reports)]
    collector = LatencyCollector(mode, mode.notifications_topic, _trigger_id_and_ts)  # read_committed for EOS
    collector.start()
    try:
        probe_tools = iter(range(10**9))
        _warm_up(mode, mode.events_topic, collector, lambda: TaskCompleted(
            user_id="bench-probe", session_id="probe", tool_id=world.tool_ids[next(probe_tools) % 3]))
        expected = expected_trigger_ids(events, mode)
        profiles = [out_dir / f"profile-{tag}-{i}.txt" for i in range(workers)]
        samplers = start_profiles([p.pid for p in worker_processes], profiles) if profile else []
        cpu_before = sum(process_cpu_seconds(p.pid) for p in worker_processes)
        try:
            started = _send(mode, mode.events_topic, events, rate, f"pipeline {tag}")
            collector.wait_for(expected, 300, idle_s=10)
        finally:
            stop_profiles(samplers)
        worker_cpu = sum(process_cpu_seconds(p.pid) for p in worker_processes) - cpu_before
        for path in profiles if profile else []:
            table = profile_result(path)
            write_report(table, out_dir, f"{path.stem}-table")
            print("\n" + render_markdown(table))
        name = f"pipeline ({workers} worker{'s' if workers > 1 else ''}, {tag})"
        result = _phase(name, events, expected, collector, started)
        result.worker_cpu_s = worker_cpu
        return result
    finally:
        collector.stop.set()
        _stop(worker_processes)
        for path in reports:
            show_stages(path, out_dir)


def stage_result(report: dict, name: str) -> BenchmarkResult:
    """One worker's stage report (written when it stops) as a table: where its batches' time went, each loop
    stage's share of the loop's time (the hybrid's own stages, `recommend: ...`, are parts of `recommend`)."""
    stages = report["stages"]
    total = sum(s["seconds"] for stage, s in stages.items() if not stage.startswith("recommend: ")) or 1.0
    rows = {stage: {"seconds": s["seconds"], "calls": s["calls"], "per call": s["ms_per_call"],
                    "cpu per call": s.get("cpu_ms_per_call"), "longest call": s.get("longest_ms"),
                    "per event": s["us_per_event"],
                    "share": 100 * s["seconds"] / total}
            for stage, s in stages.items()}
    return BenchmarkResult(
        title=f"where the batches' time went ({name})", row_label="stage", rows=rows,
        units={"seconds": "s", "calls": "count", "per call": "ms", "cpu per call": "ms", "longest call": "ms",
               "per event": "us", "share": "% of the loop"},
        digits={"seconds": 3, "per call": 3, "cpu per call": 3, "longest call": 1, "per event": 1, "share": 1},
        info={"served model": report["served"], "events": report["events"],
              "worker peak RSS": f"{report['peak_rss_mb']:,.0f} MB" if "peak_rss_mb" in report else "not recorded",
              "share": "of the loop's stages; 'recommend: ...' rows are inside 'recommend'",
              "cpu per call": "the worker thread's CPU time; per call minus it is waiting (Redis, broker)"},
    )


def show_stages(path: Path, out_dir: Path) -> None:
    """Print a worker's stage table and write it beside the bench's (md, csv, json, png)."""
    if not path.exists():
        print(f"(no stage report at {path}: the worker did not stop cleanly)")
        return
    result = stage_result(json.loads(path.read_text()), path.stem)
    write_report(result, out_dir, f"{path.stem}-table")
    print("\n" + render_markdown(result))


def _phase(
    name: str, events: list[Event], expected: set[str], collector: LatencyCollector, started: float
) -> PhaseResult:
    arrivals = {k: v for k, v in collector.arrivals.items() if k in expected}
    last = max((t for t, _ in arrivals.values()), default=started)
    return PhaseResult(name, len(events), len(expected), len(arrivals), last - started,
                       [latency for _, latency in arrivals.values()])


def _report(results: list[PhaseResult], rate: float | None, out_dir: Path, served: str,
            commit_mode: str | None = None) -> BenchmarkResult:
    result = pipeline_result(results, rate, served, commit_mode)
    write_report(result, out_dir, "bench")
    print(render_markdown(result))
    print(f"table and plot written to {out_dir}/ (bench.md, .csv, .json, .png)")
    return result
