"""`streamrec replay` (the worker's pipeline over past events, isolated) and `streamrec evaluate ...` (reports)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from cli import models as model_commands
from streamrec.settings import Settings

evaluate_app = typer.Typer(
    help="Judge models offline: a replay's notifications, the session-based protocol, per-user holdouts.",
    no_args_is_help=True,
)

DEFAULT_MODELS = ("popularity", "item-cosine", "session-knn", "session-cooccurrence", "two-tower", "two-tower-ranker")


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    import pandas as pd

    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()


def _models(models: list[str] | None, truth: Path | None) -> list[str]:
    chosen = list(models) if models else list(DEFAULT_MODELS)
    if truth is not None and "oracle" not in chosen:
        chosen.append("oracle")
    return chosen


def _finish(result, out: Path, as_json: bool) -> None:
    from measurement.report import write_report

    written = write_report(result, out)
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        typer.echo((out / "report.md").read_text())
        typer.echo("wrote " + ", ".join(str(p) for p in written.values()))


def replay(
    topic: str = typer.Option(None, "--topic", help="Replay this events topic from the beginning (default: none)"),
    file: Path = typer.Option(None, "--file", exists=True, help="Replay a dataset file or folder instead"),
    fmt: str = typer.Option("auto", "--format", help="auto, event-log, asos, yoochoose or rees46 (for --file)"),
    through_kafka: bool = typer.Option(False, "--through-kafka", help="Stage --file in a replay topic, read it back"),
    since: str = typer.Option(None, "--since", help="Window start (event time, ISO); earlier events train/warm up"),
    until: str = typer.Option(None, "--until", help="Window end (event time, ISO, exclusive)"),
    warmup_share: float = typer.Option(0.5, "--warmup-share", help="Without --since: share of events before it"),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name (repeat); default: all available"),
    truth: Path = typer.Option(None, "--truth", help="Planted truth of a simulation: adds the oracle"),
    depth: int = typer.Option(20, "--depth", help="Ranked list length kept per notification (max k)"),
    every_nth_page_view: int = typer.Option(None, "--every-nth-page-view", help="Override the page-view trigger"),
    publish: bool = typer.Option(False, "--publish", help="Also publish to replay.<run>.<model>.notifications"),
    out: Path = typer.Option(None, "--out", help="Output folder (default reports/replay-<run>)"),
    evaluate: bool = typer.Option(True, "--evaluate/--no-evaluate", help="Write the evaluation report too"),
    horizon_hours: float = typer.Option(24.0, "--horizon-hours", help="Horizon for used/bought targets"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Drive the worker's recommendation code over past events, per model, in an isolated namespace."""
    from consumers.replay.namespace import new_run_id
    from consumers.replay.runner import replay_side_by_side
    from consumers.replay.sources import read_file_events, read_topic_events, split_at
    from measurement import evaluation  # noqa: F401  (registers the oracle among the models)

    if (topic is None) == (file is None):
        raise typer.BadParameter("give exactly one of --topic or --file")
    live = Settings()
    if every_nth_page_view is not None:
        live = live.model_copy(update={"trigger_every_nth_page_view": every_nth_page_view})
    run_id = new_run_id()
    window_start, window_end = _when(since), _when(until)
    if file is not None:
        events, dataset_start = read_file_events(file, fmt)
        window_start = window_start or dataset_start
        source = str(file)
        if through_kafka:
            from consumers.replay.through_kafka import stage_events

            topic = f"replay.{run_id}.events"
            stage_events(events, live, topic)
            events = read_topic_events(live, topic, until=window_end)
            source = f"{file} via Kafka topic {topic}"
    else:
        events = read_topic_events(live, topic, until=window_end)
        source = f"topic {topic}"
    data = split_at(events, source, window_start, window_end, warmup_share)
    # With --json, stdout carries the JSON only: progress lines go to stderr.
    typer.echo(f"replaying {len(data.window)} events ({len(data.warmup)} before the window) as run {run_id}",
               err=as_json)
    out = out or Path("reports") / f"replay-{run_id}"
    manifest = replay_side_by_side(_models(model, truth), data, live, out, run_id=run_id, depth=depth,
                                   truth_path=truth, publish=publish)
    for run in manifest.models:
        typer.echo(f"{run.name}: {run.window_events} events in {run.replay_seconds:.1f}s "
                   f"({run.events_per_s:.0f} ev/s), {run.notifications} notifications", err=as_json)
    for name, reason in manifest.skipped.items():
        typer.echo(f"skipped {name}: {reason}", err=as_json)
    if evaluate:
        from measurement.evaluation.replay_evaluation import evaluate_replay

        _finish(evaluate_replay(out, int(horizon_hours * 3600)), out, as_json)


@evaluate_app.command("replay")
def evaluate_replay_dir(
    replay_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder written by `streamrec replay`"),
    horizon_hours: float = typer.Option(24.0, "--horizon-hours", help="Horizon for used/bought targets"),
    out: Path = typer.Option(None, "--out", help="Report folder (default: the replay folder)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Score a replay's notifications against what users did next (next item, used/bought within a horizon)."""
    from measurement.evaluation.replay_evaluation import evaluate_replay

    _finish(evaluate_replay(replay_dir, int(horizon_hours * 3600)), out or replay_dir, as_json)


@evaluate_app.command("sessions")
def evaluate_sessions(
    path: Path = typer.Argument(None, help="A (session_id, item_id, ts) file; default: yoochoose-100k train+test"),
    days: float = typer.Option(1.0, "--days", help="Test = sessions starting in the last N days"),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name (repeat); default: all available"),
    max_prefixes: int = typer.Option(None, "--max-prefixes", help="Evaluate only the first N test prefixes"),
    out: Path = typer.Option(Path("reports/sessions"), "--out", help="Report folder"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """The standard session-based protocol: HR@20 / MRR@20 of the next item over the full catalogue."""
    from measurement.evaluation.protocols import run_session_protocol

    result = run_session_protocol(path, _models(model, None), days, max_prefixes)
    _finish(result, out, as_json)


@evaluate_app.command("srgnn")
def evaluate_srgnn(
    dataset: str = typer.Option("yoochoose", "--dataset", "-d", help="diginetica or yoochoose (1/64)"),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name (repeat); default: the baselines"),
    max_prefixes: int = typer.Option(None, "--max-prefixes", help="Evaluate only the first N test prefixes"),
    out: Path = typer.Option(None, "--out", help="Report folder (default reports/srgnn-<dataset>)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Registry models on the SR-GNN-preprocessed benchmarks, HR@20 / MRR@20 beside the published table."""
    from measurement.evaluation.protocols import run_srgnn_protocol

    chosen = list(model) if model else ["popularity", "item-cosine", "session-knn", "session-cooccurrence"]
    result = run_srgnn_protocol(dataset, chosen, max_prefixes)
    _finish(result, out or Path("reports") / f"srgnn-{dataset}", as_json)


@evaluate_app.command("holdout")
def evaluate_holdout(
    dataset: str = typer.Option("movielens", "--dataset", help="movielens, or an event-log/interactions file"),
    share: float = typer.Option(0.1, "--share", help="Newest share of each user's events held out"),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name (repeat); default: all available"),
    out: Path = typer.Option(Path("reports/holdout"), "--out", help="Report folder"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Per-user temporal holdout for data without sessions (MovieLens by default)."""
    from measurement.evaluation.protocols import run_holdout_protocol

    _finish(run_holdout_protocol(dataset, _models(model, None), share), out, as_json)


@evaluate_app.command("asos")
def evaluate_asos(
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name (repeat); default: popularity, "
                                    "item-cosine, two-tower, two-tower-ranker"),
    data: Path = typer.Option(None, help="ASOS dsf2020 folder (default: <STREAMREC_DATA_DIR>/asos-dsf2020)"),
    out: Path = typer.Option(Path("reports/asos"), "--out", help="Report folder"),
    epochs: int = typer.Option(15, help="Most two-tower epochs (early stopping picks fewer)"),
    embedding_dim: int = typer.Option(64),
    l2: float = typer.Option(1e-3, help="L2 penalty on the two-tower embeddings"),
    user_id_dropout: float = typer.Option(0.0, help="Share of training queries with the user id hidden"),
    validation: str = typer.Option(
        "per-user-holdout", help="How the two-tower picks its epochs and popularity prior: per-user-holdout "
        "(held-out train purchases of 15% of users, as the evaluation asks; then a refit on all train) or "
        "time-slice (the last 10% of the train file)"),
    max_users: int | None = typer.Option(None, help="Evaluate on the first N users only (quick runs)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """ASOS train -> valid: each user's top 100 with their train purchases excluded, scored on valid."""
    from measurement.evaluation.asos import DEFAULT_MODELS, asos_training_config, run_asos_protocol

    if validation not in ("per-user-holdout", "time-slice"):
        raise typer.BadParameter("per-user-holdout or time-slice", param_hint="--validation")
    config = asos_training_config(epochs, embedding_dim, l2, user_id_dropout, validation)  # type: ignore[arg-type]
    result = run_asos_protocol(list(model) if model else DEFAULT_MODELS, config, data, max_users)
    _finish(result, out, as_json)


@evaluate_app.command("sim")
def evaluate_sim(
    events: int = typer.Option(200_000, help="Simulated events"),
    seed: int = typer.Option(7),
    out: Path = typer.Option(Path("reports/sim"), "--out", help="Report folder"),
    epochs: int = typer.Option(20),
    l2: float = typer.Option(1e-4, help="L2 penalty on the two-tower embeddings"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Simulated shop: retrieval, next item, ranker AUC and offers beside the oracle that knows the planted tastes."""
    from measurement.evaluation.simulation import run_simulation_protocol

    result = run_simulation_protocol(events, model_commands.training_config(epochs, 32, True, 8, l2), seed)
    _finish(result, out, as_json)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
    app.add_typer(evaluate_app, name="evaluate")
