"""`streamrec replay` (the worker's pipeline over past events, isolated) and `streamrec evaluate ...` (reports)."""

from __future__ import annotations

from pathlib import Path

import typer

from cli import models as model_commands
from cli.options import utc_time
from streamrec.settings import Settings

evaluate_app = typer.Typer(
    help="Judge models offline: a replay's notifications, the session-based protocol, per-user holdouts.",
    no_args_is_help=True,
)

DEFAULT_MODELS = ("popularity", "item-cosine", "session-knn", "session-cooccurrence", "two-tower", "two-tower-ranker")


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
    retrain_every_minutes: float = typer.Option(
        None, "--retrain-every-minutes",
        help="Retrain each model every N minutes of event time inside the window, as `streamrec trainer` would"),
    retrain_window_hours: float = typer.Option(
        168.0, "--retrain-window-hours", help="With --retrain-every-minutes: the sliding window each retrain reads"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Drive the worker's recommendation code over past events, per model, in an isolated namespace."""
    from consumers.replay.namespace import new_run_id
    from consumers.replay.runner import replay_side_by_side
    from consumers.replay.sources import read_file_events, read_topic_events, split_at
    from consumers.replay.topic_input import TopicReplayInput
    from measurement import evaluation  # noqa: F401  (registers the oracle among the models)

    if (topic is None) == (file is None):
        raise typer.BadParameter("give exactly one of --topic or --file")
    live = Settings()
    if every_nth_page_view is not None:
        live = live.model_copy(update={"trigger_every_nth_page_view": every_nth_page_view})
    run_id = new_run_id()
    window_start, window_end = utc_time(since), utc_time(until)
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
        data = split_at(events, source, window_start, window_end, warmup_share)
    else:
        # The topic is read once per model instead of held: memory stays at the training frame.
        data = TopicReplayInput(live, topic, window_start, window_end, warmup_share, source=f"topic {topic}")

    def announce(outline) -> None:
        # With --json, stdout carries the JSON only: progress lines go to stderr.
        typer.echo(f"replaying {outline.window_events} events ({outline.warmup_events} before the window) "
                   f"as run {run_id}", err=as_json)

    out = out or Path("reports") / f"replay-{run_id}"
    manifest = replay_side_by_side(_models(model, truth), data, live, out, run_id=run_id, depth=depth,
                                   truth_path=truth, publish=publish, on_outline=announce,
                                   retrain_every_s=retrain_every_minutes * 60 if retrain_every_minutes else None,
                                   retrain_window_s=retrain_window_hours * 3600)
    for run in manifest.models:
        retrained = f", {run.retrains} retrains ({run.retrain_seconds:.0f}s)" if run.retrains else ""
        typer.echo(f"{run.name}: {run.window_events} events in {run.replay_seconds:.1f}s "
                   f"({run.events_per_s:.0f} ev/s), {run.notifications} notifications{retrained}", err=as_json)
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


SRGNN_MODELS = ["popularity", "item-cosine", "session-knn", "session-cooccurrence"]


@evaluate_app.command("srgnn")
def evaluate_srgnn(
    dataset: str = typer.Option("yoochoose", "--dataset", "-d", help="diginetica or yoochoose (1/64)"),
    model: list[str] = typer.Option(
        None, "--model", "-m", "--models",
        help="Model name (repeat, or a comma list); default: the baselines. session-gru trains epoch by epoch"),
    max_prefixes: int = typer.Option(None, "--max-prefixes", help="Evaluate only the first N test prefixes"),
    epochs: int = typer.Option(7, "--epochs", help="session-gru: training epochs (fixed up front)"),
    batch_size: int = typer.Option(512, "--batch-size", help="session-gru: batch size"),
    embedding_dim: int = typer.Option(100, "--dim", help="session-gru: item embedding and session vector size"),
    learning_rate: float = typer.Option(1e-3, "--lr", help="session-gru: Adam learning rate"),
    lr_decay: float = typer.Option(0.7, "--lr-decay", help="session-gru: learning rate factor after each epoch"),
    scale: float = typer.Option(12.0, "--scale", help="session-gru: softmax scale for normalised scores"),
    max_len: int = typer.Option(20, "--max-len", help="session-gru: most recent items kept per prefix"),
    max_batches: int = typer.Option(None, "--max-batches", help="session-gru: cap batches per epoch (trial runs)"),
    validation: float = typer.Option(
        0.0, "--validation", help="session-gru: hold out this fraction of the latest training sessions; stop "
        "early on it"),
    patience: int = typer.Option(2, "--patience", help="session-gru: epochs without a better validation score"),
    seed: int = typer.Option(7, "--seed", help="session-gru: seed of the initial weights and the batch order"),
    threads: int = typer.Option(2, "--threads", help="TensorFlow intra-op threads (the machine is shared)"),
    data_root: Path = typer.Option(None, "--data-root", help="Folder holding <dataset>-srgnn (default: the data dir)"),
    out: Path = typer.Option(None, "--out", help="Report folder (default reports/srgnn-<dataset>)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Registry models and the session GRU on the SR-GNN-preprocessed benchmarks: HR@20 / MRR@20 (fractions)
    beside the published table. The report is rewritten after every model and GRU epoch (a cut-off run keeps
    its results); models of an earlier run in the same folder that this run does not redo stay in the table."""
    from measurement.evaluation.srgnn import SESSION_GRU, earlier_report, run_srgnn_protocol, with_earlier_runs
    from measurement.evaluation.srgnn_session_gru import SessionGRUTraining
    from measurement.report import write_report

    chosen = [name.strip() for value in (model or SRGNN_MODELS) for name in value.split(",") if name.strip()]
    out = out or Path("reports") / f"srgnn-{dataset}"
    if SESSION_GRU in chosen:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    training = SessionGRUTraining(epochs=epochs, batch_size=batch_size, embedding_dim=embedding_dim,
                                  learning_rate=learning_rate, lr_decay=lr_decay, scale=scale, max_len=max_len,
                                  max_batches=max_batches, validation=validation, patience=patience,
                                  seed=seed)
    earlier = earlier_report(out / "report.json")

    def keep(result) -> None:
        write_report(with_earlier_runs(result, earlier), out)

    result = run_srgnn_protocol(dataset, chosen, max_prefixes, data_dir=data_root, session_gru=training,
                                model_dir=out / SESSION_GRU, on_update=keep)
    _finish(with_earlier_runs(result, earlier), out, as_json)


@evaluate_app.command("srgnn-blend")
def evaluate_srgnn_blend(
    gru: list[Path] = typer.Option(..., "--gru", help="The session GRU saved by `evaluate srgnn -m session-gru "
                                   "--validation F` (trained on the older sessions, its best validation epoch); "
                                   "repeat for GRUs of other seeds (`--seed`): they blend as their mean softmax"),
    dataset: str = typer.Option("diginetica", "--dataset", "-d", help="diginetica or yoochoose (1/64)"),
    validation: float = typer.Option(0.1, "--validation", help="The share of newest training sessions held out: "
                                     "the same F the GRU was trained with"),
    validation_prefixes: int = typer.Option(20_000, "--validation-prefixes",
                                            help="Validation prefixes the weights are chosen on (a fixed sample)"),
    depth: int = typer.Option(200, "--depth", help="Items of V-SKNN's and the rules' lists that enter the blend"),
    max_prefixes: int = typer.Option(None, "--max-prefixes", help="Score only the first N test prefixes (trials)"),
    refit_gru: list[Path] = typer.Option(None, "--refit-gru", help="A session GRU trained on every training session "
                                         "for the epochs validation chose (`evaluate srgnn -m session-gru --epochs "
                                         "N`), one per `--gru`: the chosen blend is also scored with every part "
                                         "refitted on all training sessions"),
    data_root: Path = typer.Option(None, "--data-root", help="Folder holding <dataset>-srgnn (default: the data dir)"),
    out: Path = typer.Option(None, "--out", help="Report folder (default reports/srgnn-blend-<dataset>)"),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """The session GRU blended with V-SKNN and sequential rules on an SR-GNN benchmark: every model fitted on the
    older training sessions, the blend's weights chosen on the newest ones, the test prefixes scored once."""
    from dataclasses import replace

    from measurement.evaluation.srgnn import published_rows
    from measurement.evaluation.srgnn_blend import bar_rows, run_blend
    from measurement.report import EvaluationResult
    from model.datasets.srgnn import load_benchmark

    if refit_gru and len(refit_gru) != len(gru):
        raise typer.BadParameter("give one --refit-gru per --gru (the same seeds, refitted)", param_hint="--refit-gru")
    bench = load_benchmark(dataset, data_root)
    if max_prefixes is not None:
        bench = replace(bench, test=bench.test.head(max_prefixes))
    blend = run_blend(bench, gru, validation, depth=depth, validation_prefixes=validation_prefixes,
                      refit_gru=refit_gru or None)
    rows = [*blend.rows, *bar_rows(dataset), *published_rows(dataset)]
    models = list(dict.fromkeys(r.model for r in rows))
    info = {"dataset": f"{dataset} (SR-GNN preprocessing)",
            "validation": f"newest {validation:.0%} of training sessions, {blend.validation_prefixes} prefixes",
            "chosen": {"w_knn": blend.chosen[0], "w_rules": blend.chosen[1], "session-knn": blend.knn_settings},
            "figures": "fractions (0.5073 = 50.73 %), full catalogue, nothing excluded",
            "gru": ", ".join(map(str, gru)), "refit gru": ", ".join(map(str, refit_gru)) if refit_gru else "none"}
    _finish(EvaluationResult(title=f"Session-based benchmark, blend: {dataset}", models=models, rows=rows, info=info),
            out or Path("reports") / f"srgnn-blend-{dataset}", as_json)


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
                                    "item-cosine, als (implicit's defaults), als-tuned (ALS with settings chosen on "
                                    "a holdout of train, its holdout table in the report), two-tower, "
                                    "two-tower-ranker"),
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
