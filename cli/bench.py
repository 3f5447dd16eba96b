"""`streamrec bench ...`: commands that time things (the live pipeline beside the broker's floor, the consumer
group's hand-overs, serving cost per trigger, the collector and a click's trip to a push).

`streamrec evaluate ...` judges models; these only measure speed. Heavy imports happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli import models as model_commands
from producers.training_data import DATA_HELP
from streamrec.settings import Settings

bench_app = typer.Typer(help="Time the pipeline, the group, serving and pushes (tables and PNGs under reports/).",
                        no_args_is_help=True)


@bench_app.command("pipeline")
def bench_pipeline(
    events: int = typer.Option(20_000, "--events", "-n", help="Events to send"),
    rate: float = typer.Option(2000, "--rate", help="Target events per second"),
    workers: int = typer.Option(1, "--workers", help="Worker processes in the group"),
    delivery: str = typer.Option(
        "at-least-once", "--delivery",
        help="Delivery modes to run on the same events, comma-separated: at-least-once, exactly-once",
    ),
    out: Path = typer.Option(Path("reports/bench"), "--out", help="Folder for the table and plot"),
) -> None:
    """Drive the live pipeline and report throughput and latency percentiles beside the broker's floor."""
    from measurement.benchmarks.pipeline_benchmark import run_benchmark

    modes = tuple(m.strip() for m in delivery.split(",") if m.strip())
    unknown = [m for m in modes if m not in ("at-least-once", "exactly-once")]
    if unknown or not modes:
        raise typer.BadParameter(f"unknown delivery mode {unknown}: use at-least-once and/or exactly-once")
    run_benchmark(Settings(), events, rate, workers, out, modes)


@bench_app.command("group")
def bench_group(
    rounds: int = typer.Option(3, "--rounds", help="Times each moment is measured"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON on stdout"),
) -> None:
    """Time the consumer group's hand-overs on this broker: join, second join, clean leave, SIGKILL."""
    import json

    from measurement.benchmarks.group_benchmark import as_json as timings_json
    from measurement.benchmarks.group_benchmark import markdown, measure_group
    from streamrec.dev_stack import DevStack

    settings = Settings()
    timings = measure_group(settings, rounds)
    if as_json:
        typer.echo(json.dumps(timings_json(timings)))
        return
    broker = next((s.kind for s in DevStack(settings).status() if s.name == "broker"), None) or "the broker"
    typer.echo(markdown(timings, broker, settings))


@bench_app.command("serving")
def bench_serving(
    data: str = typer.Option("sim:100000", help=DATA_HELP + " Requests come from its latest contexts."),
    bundle: Path | None = typer.Option(None, help="Bundle trained on --data (default: train one now)"),
    candidates: int = typer.Option(200, help="FAISS candidates ranked per trigger"),
    index_sizes: str = typer.Option("50000,250000", help="Also time flat vs HNSW on random vectors ('' = skip)"),
    out: Path = typer.Option(Path("reports")),
) -> None:
    """Milliseconds per trigger for query tower, FAISS and ranker (and model.predict for comparison)."""
    from measurement.benchmarks.serving_benchmark import (
        benchmark_index,
        benchmark_serving,
        trigger_requests,
        write_serving_report,
    )
    from measurement.report_files import write_table
    from model.bundle import ModelBundle
    from model.training import train_bundle

    frame, catalogue = model_commands.load_data_option(data)
    loaded = ModelBundle.load(bundle) if bundle else train_bundle(
        frame, model_commands.training_config(10, 32, True, 4), catalogue=catalogue)
    table = benchmark_serving(loaded, trigger_requests(frame, 64), candidates=candidates)
    write_serving_report(table, out, len(loaded.index))
    typer.echo(table.to_string())
    if index_sizes:
        index_table = benchmark_index(tuple(int(s) for s in index_sizes.split(",")), k=candidates)
        write_table(index_table, out, "index_cost")
        typer.echo(index_table.to_string())


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
