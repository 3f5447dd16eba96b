"""The streaming pipeline: topics, worker, simulated traffic, file replay, watching notifications, benchmark."""

from __future__ import annotations

from pathlib import Path

import typer

from streamrec.settings import Settings


def topics() -> None:
    """Create the events, notifications and dead-letter topics with the configured partition counts.

    Exits with status 1 when an existing topic has another partition count than configured (for example
    after a broker auto-created it), naming the topic, both counts and the fix.
    """
    from streamrec.topics import ensure_topics

    report = ensure_topics(Settings())
    typer.echo("created: " + (", ".join(report.created) if report.created else "nothing (all exist)"))
    for name in report.unverified:
        typer.echo(f"warning: could not check the partition count of {name}", err=True)
    if report.mismatches:
        for mismatch in report.mismatches:
            typer.echo(f"error: {mismatch.describe()}", err=True)
        raise typer.Exit(1)


def worker(
    ready_file: Path = typer.Option(
        None, "--ready-file", help="Present while the worker owns partitions and Redis and the broker answer"
    ),
    model: str = typer.Option(
        None, "--model", "-m",
        help="The streaming model (session-cooccurrence or session-knn-stream; STREAMREC_STREAMING_MODEL). "
             "Models trained offline are served by saving them under the model dir: `streamrec train --model`",
    ),
) -> None:
    """Run a recommendation worker in the consumer group until SIGTERM/SIGINT (drains, flushes, commits)."""
    from consumers.worker.main import run_worker

    settings = Settings()
    if model is not None:
        settings = settings.model_copy(update={"streaming_model": checked_streaming_model(model)})
    run_worker(settings, ready_file=ready_file)


def checked_streaming_model(model: str) -> str:
    """`model` if it is a streaming model a worker can serve without a saved version, else a usage error that says
    how to serve it (`worker --model` and `bench pipeline --model` share this check)."""
    from typing import get_args

    streaming = get_args(Settings.model_fields["streaming_model"].annotation)
    if model not in streaming:
        raise typer.BadParameter(f"{model!r} does not learn from the stream; choose one of {', '.join(streaming)}, "
                                 f"or save it with `streamrec train --model {model} --out DIR` and serve DIR "
                                 "(STREAMREC_MODEL_DIR, or `bench pipeline --model-dir DIR`)", param_hint="--model")
    return model


def simulate(
    events: int = typer.Option(None, "--events", "-n", help="How many events to send"),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds"),
    rate: float = typer.Option(None, "--rate", help="Events per second (default: as fast as possible)"),
    seed: int = typer.Option(7, "--seed", help="Same seed, same traffic"),
    out: Path = typer.Option(None, "--out", help="Write a parquet/CSV event log instead of streaming"),
    truth: Path = typer.Option(None, "--truth", help="Where to write the planted ground truth (JSON)"),
    launched_share: float = typer.Option(
        0.15, "--launched-share", min=0.0, max=0.99,
        help="With --out: share of products launched mid-stream, each on a day drawn over the traffic's span"),
    popularity_drift: float = typer.Option(
        0.05, "--popularity-drift", min=0.0, help="With --out: SD of each product's log-popularity change per day"),
) -> None:
    """Synthetic traffic with planted tastes: stream it to Kafka, or write it as a file with --out."""
    if out is not None:
        from producers.live_simulation import write_simulation

        rows, truth_path = write_simulation(out, events or 10_000, seed, launched_share=launched_share,
                                            popularity_drift=popularity_drift)
        typer.echo(f"wrote {rows} events to {out} and the planted truth to {truth_path}")
        return
    from producers.live_simulation import stream_simulation

    run = stream_simulation(Settings(), events, duration, rate, seed, truth_out=truth)
    typer.echo(f"run {run.run_id}: sent {run.sent} events in {run.seconds:.1f}s ({run.sent / run.seconds:.0f}/s), "
               f"{run.resent} re-sent after broker errors, {run.lost} lost")
    if run.lost:
        raise typer.Exit(1)


def replay_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Event log (parquet/CSV) or ASOS pairs"),
    fmt: str = typer.Option("auto", "--format", help="auto, event-log or asos"),
    rate: float = typer.Option(None, "--rate", help="Events per second (default: as fast as possible)"),
    limit: int = typer.Option(None, "--limit", help="Send at most this many events"),
) -> None:
    """Stream a dataset file into the events topic in file order."""
    from producers.file_replay import replay_file as run

    sent = run(path, Settings(), fmt, rate, limit)
    typer.echo(f"sent {sent} events from {path}")


def stream_sessions(
    dataset: str = typer.Option("diginetica", "--dataset", "-d", help="diginetica or yoochoose (SR-GNN 1/64)"),
    topic: str = typer.Option(None, "--topic", help="Topic to write (default: the events topic)"),
    rate: float = typer.Option(None, "--rate", help="Events per second (default: as fast as possible)"),
    limit_sessions: int = typer.Option(None, "--limit-sessions", help="Last N training and first N test sessions"),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthesised clock"),
    as_json: bool = typer.Option(False, "--json", help="Print only the summary JSON on stdout"),
) -> None:
    """Real sessions at scale: stream an SR-GNN benchmark's sessions as timed page views (train, then test).

    The clock rule is in producers/session_stream.py; replay with `--since` the printed window start to judge
    the models on the test sessions after warming them up on the training sessions.
    """
    from producers.session_stream import StreamClock, srgnn_stream
    from producers.session_stream import stream_sessions as run
    from streamrec.topics import ensure_topics, historical_topic

    settings = Settings()
    # Our brokers never auto-create topics: create the named one like the events topic (same partitions), keeping
    # every record (the clock starts in January 2026: a 7-day retention deleted the whole stream).
    specs = None if topic is None else [historical_topic(settings, topic)]
    ensure_topics(settings, specs)
    summary = run(settings, srgnn_stream(dataset, StreamClock(seed=seed), limit_sessions), topic, rate)
    if as_json:
        typer.echo(summary.model_dump_json())
    else:
        typer.echo(f"sent {summary.events:,} events ({summary.train_sessions:,} training and "
                   f"{summary.test_sessions:,} test sessions) to {summary.topic} in {summary.seconds:.1f}s "
                   f"({summary.events_per_s:,.0f}/s), {summary.lost} lost; test sessions start at "
                   f"{summary.window_start.isoformat()} (replay --since that)")
    if summary.lost:
        raise typer.Exit(1)


def watch(
    count: int = typer.Option(None, "--count", help="Stop after this many notifications"),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds"),
) -> None:
    """Print notifications as they arrive, with their latency from the triggering event."""
    from consumers.notifier.printer import print_notifications

    print_notifications(Settings(), count, duration)


def demo(
    duration: float = typer.Option(30.0, "--duration", help="Seconds of simulated traffic"),
    rate: float = typer.Option(100.0, "--rate", help="Events per second"),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """End to end on this machine: local stack, a worker, simulated traffic, notifications printed live."""
    from cli.demo import run_demo

    run_demo(Settings(), duration, rate, seed)


def restore_state(
    since: str = typer.Option(..., "--since", help="How far back: 30m, 2h, 1d, or an ISO time (UTC by default)"),
    as_json: bool = typer.Option(False, "--json", help="Print only a JSON summary on stdout"),
    no_model: bool = typer.Option(False, "--no-model", help="Do not rebuild the streaming co-occurrence model"),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="Records per Redis round trip"),
) -> None:
    """Rebuild Redis after it came back empty: replay events and notifications from the log since --since.

    Restores session context, consumption history, notification cooldowns, the redelivery dedupe and (unless
    --no-model) the streaming model's counts. Running it twice changes nothing. Run it before workers start.

    See docs/operations.md.
    """
    import json

    from consumers.worker.state_restore import parse_since
    from consumers.worker.state_restore import restore_state as run

    try:
        moment = parse_since(since)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None
    summary = run(Settings(), moment, progress=not as_json, batch_size=batch_size, rebuild_model=not no_model)
    if as_json:
        typer.echo(json.dumps(summary.to_dict()))
    else:
        for line in summary.lines():
            typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("topics")(topics)
    app.command("worker")(worker)
    app.command("simulate")(simulate)
    app.command("replay-file")(replay_file)
    app.command("stream-sessions")(stream_sessions)
    app.command("watch")(watch)
    app.command("restore-state")(restore_state)
