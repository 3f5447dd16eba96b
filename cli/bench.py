"""`streamrec bench ...`: commands that time things (the live pipeline beside the broker's floor, the consumer
group's hand-overs, serving cost per trigger, every candidate source's cost alone and batched, a saved session
model's recommend(), the collector and a click's trip to a push). Each writes its table through the one report
writer (md, csv, json, png).

`streamrec evaluate ...` judges models; these only measure speed. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from cli import models as model_commands
from cli.options import int_list
from producers.training_data import DATA_HELP
from streamrec.events import Event
from streamrec.settings import Settings

bench_app = typer.Typer(help="Time the pipeline, the group, serving and pushes (tables and PNGs under reports/).",
                        no_args_is_help=True)


def _show(result, out: Path, stem: str, as_json: bool = False) -> None:
    """Write the table through the one report writer and print it (with `as_json`, only the JSON on stdout)."""
    from measurement.report import render_markdown, write_report

    written = write_report(result, out, stem)
    if as_json:
        typer.echo(result.model_dump_json())
        return
    typer.echo(render_markdown(result))
    typer.echo("wrote " + ", ".join(str(p) for p in written.values()))


@bench_app.command("pipeline")
def bench_pipeline(
    events: int = typer.Option(20_000, "--events", "-n", help="Events to send"),
    rate: float = typer.Option(2000, "--rate", help="Target events per second"),
    workers: str = typer.Option("1", "--workers", help="Worker processes in the group; a list (1,2,3) runs each count "
                                                      "in turn and adds a table of them (workers.md/.csv/.json/.png)"),
    redis_cluster: int = typer.Option(
        0, "--redis-cluster", min=0,
        help="Start a local Redis Cluster of this many masters for the run (0: the configured STREAMREC_REDIS_URL)"),
    delivery: str = typer.Option(
        "at-least-once", "--delivery",
        help="Delivery modes to run on the same events, comma-separated: at-least-once, exactly-once",
    ),
    out: Path = typer.Option(Path("reports/bench"), "--out", help="Folder for the table and plot"),
    model: str = typer.Option(
        None, "--model", "-m",
        help="The streaming model the workers serve when no saved model is (session-cooccurrence or "
             "session-knn-stream); default: what `streamrec worker` serves",
    ),
    model_dir: Path = typer.Option(
        None, "--model-dir", help="Serve the newest model saved here (`streamrec train --model hybrid --out DIR`); "
                                  "default: STREAMREC_MODEL_DIR",
    ),
    profile: bool = typer.Option(False, "--profile", help="Sample each worker with py-spy while the events flow "
                                                          "and print where its CPU went (needs ptrace rights)"),
) -> None:
    """Drive the live pipeline and report throughput and latency percentiles beside the broker's floor."""
    from cli.pipeline import checked_streaming_model
    from measurement.benchmarks.pipeline_benchmark import run_benchmark, served_settings

    modes = tuple(m.strip() for m in delivery.split(",") if m.strip())
    unknown = [m for m in modes if m not in ("at-least-once", "exactly-once")]
    if unknown or not modes:
        raise typer.BadParameter(f"unknown delivery mode {unknown}: use at-least-once and/or exactly-once")
    if model is not None:
        model = checked_streaming_model(model)
    counts = int_list(workers, "--workers", 1, "a worker count is at least 1")
    settings = served_settings(Settings(), model, model_dir)
    cluster = None
    if redis_cluster:
        from streamrec.dev_redis_cluster import start_cluster

        folder = out / "redis-cluster"
        shutil.rmtree(folder, ignore_errors=True)
        cluster = start_cluster(folder, masters=redis_cluster)
        settings = settings.model_copy(update={"redis_url": cluster.url})
        typer.echo(f"local Redis Cluster of {redis_cluster} masters at {cluster.url}", err=True)
    from measurement.benchmarks.pipeline_benchmark import redis_cpu_seconds, workers_result

    results, redis_cpu_us = {}, {}
    try:
        servers = [node.client() for node in cluster.masters()] if cluster else [settings.redis_client()]
        for n in counts:
            before = redis_cpu_seconds(servers)
            results[n] = run_benchmark(settings, events, rate, n, out / f"workers-{n}" if len(counts) > 1 else out,
                                       modes, profile)
            # Per event of the pipeline phases (the floor does not touch Redis); the configured Redis may be
            # shared with other work, a cluster started here is the run's own.
            redis_cpu_us[n] = (redis_cpu_seconds(servers) - before) * 1e6 / (events * len(modes))
    finally:
        if cluster is not None:
            cluster.stop()
    if len(counts) > 1 or redis_cluster:
        _show(workers_result(results, rate, redis_cluster, redis_cpu_us), out, "workers")


@bench_app.command("loop")
def bench_loop(
    events: int = typer.Option(12_000, "--events", "-n", help="Events of the pipeline bench's traffic to run"),
    batch: int = typer.Option(None, "--batch", help="Events per batch (default: the worker's max_poll_records)"),
    model: str = typer.Option(None, "--model", "-m", help="The streaming model served when no saved model is "
                                                          "(session-cooccurrence or session-knn-stream)"),
    model_dir: Path = typer.Option(None, "--model-dir", help="Serve the newest model saved here; default: "
                                                             "STREAMREC_MODEL_DIR"),
    dump: Path = typer.Option(None, "--dump", help="Write what users would be sent, one notification per line"),
    out: Path = typer.Option(Path("reports/bench-loop"), "--out", help="Folder for the table and plot"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON on stdout"),
) -> None:
    """The worker's loop without the broker: the bench's events through the recommendation pipeline on Redis, with
    the served model. Prints CPU per event, the stage table and a digest of what users would be sent (the same
    for the same events, settings and model: compare it across a change meant only to be faster)."""
    from cli.pipeline import checked_streaming_model
    from measurement.benchmarks.loop_benchmark import loop_result, run_loop
    from measurement.benchmarks.pipeline_benchmark import bench_traffic, served_settings
    from streamrec.compute_threads import limit_compute_threads

    settings = served_settings(Settings(), checked_streaming_model(model) if model else None, model_dir)
    limit_compute_threads(settings.compute_threads)  # as a worker does, before any model loads
    if _reachable_redis(settings) is None:
        raise typer.BadParameter(f"no Redis answers at {settings.redis_url} (`streamrec dev up`)")
    run = run_loop(settings, bench_traffic(events)[1], batch or settings.max_poll_records, dump)
    typer.echo(f"{run.events:,} events, {run.notifications:,} notifications, {1e6 * run.cpu_s / run.events:.0f} µs "
               f"of CPU per event, digest {run.digest}", err=True)
    _show(loop_result(run), out, "loop", as_json)


@bench_app.command("group")
def bench_group(
    rounds: int = typer.Option(3, "--rounds", help="Times each moment is measured"),
    out: Path = typer.Option(Path("reports/group"), "--out", help="Folder for the table and plot"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON on stdout (the report's group.json)"),
) -> None:
    """Time the consumer group's hand-overs on this broker: join, second join, clean leave, SIGKILL."""
    from measurement.benchmarks.group_benchmark import group_result, measure_group
    from streamrec.dev_stack import DevStack

    settings = Settings()
    timings = measure_group(settings, rounds)
    broker = next((s.kind for s in DevStack(settings).status() if s.name == "broker"), None) or "the broker"
    result = group_result(timings, broker, settings)
    _show(result, out, "group", as_json)


@bench_app.command("serving")
def bench_serving(
    data: str = typer.Option("sim:100000", help=DATA_HELP + " Requests come from its latest contexts."),
    bundle: Path | None = typer.Option(None, help="Bundle trained on --data (default: train one now)"),
    candidates: int = typer.Option(200, help="FAISS candidates ranked per trigger"),
    index_sizes: str = typer.Option("50000,250000", help="Also time flat vs HNSW on random vectors ('' = skip)"),
    out: Path = typer.Option(Path("reports")),
) -> None:
    """Milliseconds per trigger for query tower, FAISS and ranker (and model.predict for comparison)."""
    from measurement.benchmarks.serving_benchmark import benchmark_index, benchmark_serving, trigger_requests
    from model.bundle import ModelBundle
    from model.training import train_bundle

    frame, catalogue = model_commands.load_data_option(data)
    loaded = ModelBundle.load(bundle) if bundle else train_bundle(
        frame, model_commands.training_config(10, 32, True, 4), catalogue=catalogue)
    _show(benchmark_serving(loaded, trigger_requests(frame, 64), candidates=candidates), out, "serving_cost")
    if index_sizes:
        _show(benchmark_index(tuple(int(s) for s in index_sizes.split(",")), k=candidates), out, "index_cost")


@bench_app.command("catalogue")
def bench_catalogue(
    sizes: str = typer.Option("10000,100000,1000000", "--sizes", help="Catalogue sizes, comma-separated"),
    out: Path = typer.Option(Path("reports/catalogue"), "--out", help="Folder for the table and plot"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON on stdout (the report's catalogue.json)"),
) -> None:
    """Retrieval by catalogue size: build time, search per trigger and per poll, memory, HNSW recall."""
    from measurement.benchmarks.catalogue_scaling import benchmark_catalogue

    counts = int_list(sizes, "--sizes", 300, "sizes must be at least 300 items (a top-200 search)")
    _show(benchmark_catalogue(counts), out, "catalogue", as_json)


@bench_app.command("session-serving")
def bench_session_serving(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="A saved session model folder"),
    dataset: str = typer.Option("diginetica", "--dataset", "-d", help="Whose test prefixes to replay as contexts"),
    requests: int = typer.Option(300, "--requests", "-n"),
    data_root: Path = typer.Option(None, "--data-root", help="Folder holding <dataset>-srgnn (default: the data dir)"),
    threads: int = typer.Option(2, "--threads", help="TensorFlow intra-op threads"),
    out: Path = typer.Option(Path("reports/session-serving"), "--out", help="Folder for the table and plot"),
) -> None:
    """Time single `recommend` calls of a saved session model (full-catalogue scoring, top 20)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from measurement.benchmarks.session_serving import serving_latency
    from model.datasets.srgnn import load_benchmark
    from model.session_gru.recommender import SessionModelRecommender

    recommender = SessionModelRecommender.load(model_dir)
    bench = load_benchmark(dataset, data_root, max_len=recommender.config.max_len)
    name = f"{model_dir} ({recommender.config.n_items:,} items)"
    _show(serving_latency(recommender, bench, name, requests), out, f"session_serving_{dataset}")


def _bench_events(data: str) -> list[Event]:
    """The events of a `--data` value: `sim:N[:SEED]` simulated as `train --data` does, else a dataset file or
    folder read as replay reads it (streaming sources warm up on real events, not on frame rows)."""
    from consumers.replay.sources import read_file_events
    from producers.simulator import simulate

    if data.startswith("sim:"):
        parts = data.split(":")
        try:
            n_events, seed = int(parts[1]), int(parts[2]) if len(parts) > 2 else 7
        except (IndexError, ValueError) as error:
            raise typer.BadParameter(f"{data!r}: expected sim:N or sim:N:SEED with integers", param_hint="--data") \
                from error
        return simulate(n_events, seed=seed)[1]
    if not Path(data).exists():
        raise typer.BadParameter(f"{data!r} is neither sim:N, a folder nor a file", param_hint="--data")
    return read_file_events(Path(data))[0]


def _reachable_redis(settings: Settings):
    """A Redis client when one answers at the settings' URL, else None (streaming sources are then skipped)."""
    import redis

    client = settings.redis_client()
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


@bench_app.command("sources")
def bench_sources(
    data: str = typer.Option("sim:20000", "--data",
                             help="'sim:N[:SEED]' (simulated shop), or a dataset file or folder as `streamrec replay "
                                  "--file` reads it (event log, ASOS, yoochoose, rees46)"),
    model: list[str] = typer.Option(None, "--model", "-m", help="Source to time (repeat); default: every registered "
                                                                "one, those that cannot be built here skipped"),
    requests: int = typer.Option(256, "--requests", "-n", help="Trigger requests (contexts of the latest events)"),
    batch: str = typer.Option("1,32", "--batch", help="recommend_batch chunk sizes, comma-separated"),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs of the neural sources (default: theirs)"),
    out: Path = typer.Option(Path("reports/sources"), "--out", help="Folder for the table and plot"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON on stdout (the report's source_cost.json)"),
) -> None:
    """Ms per trigger of every candidate source, one recommend() at a time (p50/p99) and batched, beside its
    fit/warm-up seconds: fitted on the first 80% of events, streaming ones warmed through Redis."""
    import contextlib
    import sys

    from measurement.benchmarks.source_cost import benchmark_sources
    from model.registry import get_spec, model_names

    sizes = int_list(batch, "--batch", 1, "batch sizes must be positive integers")
    settings = Settings()
    # The oracle reads the planted truth: a yardstick for accuracy, not a source a worker could serve.
    names = list(model) if model else [n for n in model_names() if not get_spec(n).needs_truth]
    client = _reachable_redis(settings)
    if client is None:
        typer.echo(f"no Redis answers at {settings.redis_url} (`streamrec dev up`): streaming sources are skipped",
                   err=True)
    # Training code writes progress lines to stdout; with --json stdout carries the JSON alone.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        events = _bench_events(data)
        typer.echo(f"{len(events):,} events from {data}; timing {', '.join(names)}", err=True)
        result = benchmark_sources(names, events, requests, sizes, settings.recommendations_per_notification,
                                   client, settings, epochs, source=data)
    for name, reason in result.info["skipped"].items():
        typer.echo(f"skipped {name}: {reason}", err=True)
    _show(result, out, "source_cost", as_json)


@bench_app.command("reload")
def bench_reload(
    live_events: int = typer.Option(4000, "--events", "-n", help="Live events served before the publish"),
    batch: int = typer.Option(100, "--batch", help="Events per batch (the worker's poll)"),
    neural: bool = typer.Option(False, "--neural/--no-neural", help="Hybrids with the GRU session encoder"),
    out: Path = typer.Option(Path("reports/bench"), "--out", help="Folder for the table and plot"),
) -> None:
    """Batch latency before, during and after a hot reload of a retrained hybrid, and the retrain's time."""
    import tempfile

    from measurement.benchmarks.reload_benchmark import run_reload_benchmark

    with tempfile.TemporaryDirectory() as model_dir:
        result = run_reload_benchmark(Settings(), Path(model_dir), live_events=live_events, batch=batch,
                                      neural=neural)
    _show(result, out, "reload")


@bench_app.command("push")
def bench_push(
    singles: int = typer.Option(300, "--singles", help="Single-event POSTs to time"),
    batches: int = typer.Option(50, "--batches", help="100-event POSTs to time"),
    clicks: int = typer.Option(40, "--clicks", help="Click-to-push trips to time (one new user each)"),
    out: Path = typer.Option(Path("reports/push"), "--out", help="Folder for the table and plot"),
) -> None:
    """Time the collector's 202 (after Kafka's ack) and a click's trip to a pushed notification, in-process."""
    from measurement.benchmarks.push_benchmark import run_push_benchmark

    run_push_benchmark(Settings(), singles, batches, clicks, out)


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")
