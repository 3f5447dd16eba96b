"""Model commands: train a bundle, ask it for recommendations, similar items, users to target, offers.

TensorFlow and FAISS are imported inside the commands so `streamrec --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.options import utc_time
from producers.training_data import DATA_HELP


def load_data_option(data: str):
    from producers.training_data import UnknownDataSource, load_training_data

    try:
        return load_training_data(data)
    except UnknownDataSource as error:
        raise typer.BadParameter(str(error), param_hint="--data") from error


def _recommender(bundle: Path | None):
    """The saved model at `bundle`, else the newest one under the model dir (any kind, as the worker serves)."""
    from model.bundle_paths import newest_bundle
    from model.saved_models import load_recommender
    from streamrec.settings import get_settings

    path = bundle or newest_bundle(get_settings().model_dir)
    if path is None:
        raise typer.BadParameter(f"no saved model under {get_settings().model_dir}; run `streamrec train` first")
    return load_recommender(path)


def _two_tower(bundle: Path | None):
    """Like `_recommender`, for commands that need the two-tower's embeddings (offers, users to target)."""
    from model.two_tower.recommender import TwoTowerRecommender

    model = _recommender(bundle)
    if not isinstance(model, TwoTowerRecommender):
        raise typer.BadParameter(f"this command needs a two-tower model; the chosen one is {model.name}")
    return model


def training_config(epochs: int, embedding_dim: int, ranker: bool, ranker_epochs: int, l2: float = 1e-4):
    from model.ranking.features import RankerConfig
    from model.training import TrainingConfig
    from model.two_tower.towers import TwoTowerConfig

    return TrainingConfig(
        two_tower=TwoTowerConfig(epochs=epochs, embedding_dim=embedding_dim, hidden_units=2 * embedding_dim, l2=l2),
        ranker=RankerConfig(epochs=ranker_epochs) if ranker else None,
    )


def _print_items(title: str, rows: list[tuple[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("id")
    table.add_column("score", justify="right")
    for rank, (name, score) in enumerate(rows, start=1):
        table.add_row(str(rank), name, f"{score:.4f}")
    Console().print(table)


def _topic_frame(topic: str, since: str | None, until: str | None):
    """The interactions frame of `topic`'s events in [since, until) by event time (read outside any group)."""
    from consumers.replay.sources import read_topic_events
    from model.interactions import events_to_frame
    from streamrec.settings import get_settings

    start, end = utc_time(since), utc_time(until)
    events = [e for e in read_topic_events(get_settings(), topic, until=end) if start is None or e.ts >= start]
    if not events:
        raise typer.BadParameter(f"no events in topic {topic} between {since or 'its start'} and {until or 'now'}")
    return events_to_frame(sorted(events, key=lambda e: e.ts)), None


def train(
    data: str = typer.Option(None, help=DATA_HELP),
    from_topic: str = typer.Option(None, "--from-topic", help="Train on this events topic instead of --data"),
    since: str = typer.Option(None, "--since", help="With --from-topic: first event time (ISO, UTC unless zoned)"),
    until: str = typer.Option(None, "--until", help="With --from-topic: end event time, exclusive (ISO)"),
    out: Path = typer.Option(Path("artifacts/models"), help="Model folder; the bundle is written to OUT/<version>"),
    epochs: int = typer.Option(20, help="Two-tower epochs at most (early stopping on a later time slice)"),
    embedding_dim: int = typer.Option(32, help="Embedding size of both towers"),
    ranker: bool = typer.Option(True, help="Also train the wide & deep ranker"),
    ranker_epochs: int = typer.Option(8, help="Ranker epochs at most"),
    l2: float = typer.Option(1e-4, help="L2 penalty on the two-tower embeddings"),
    model: str = typer.Option(
        "two-tower", "--model", "-m",
        help="two-tower (the bundle: towers, FAISS, ranker), hybrid (every source + the listwise ranker, trained "
             "through the worker's pipeline; needs Redis), or any model fitted offline by its registry name "
             "(session-gru, als, als-tuned, session-knn, item-cosine, popularity); the worker serves the newest "
             "under OUT"),
    neural: bool = typer.Option(True, "--neural/--no-neural", help="Hybrid: with the GRU session encoder source"),
    log_events: int = typer.Option(40_000, "--log-events", help="Hybrid: newest events replayed to log examples"),
    tune_als: bool = typer.Option(
        False, "--tune-als/--no-tune-als",
        help="Hybrid: choose the ALS source's factors and alpha on a per-user purchase holdout of the frame the "
             "sources are fitted on (implicit's defaults + factors {64,128} x alpha {4,8}: 5 fits; saved in "
             "sources/als/als.json); off: implicit's defaults. For ALS alone: --model als-tuned (19 fits)"),
) -> None:
    """Train a model and save it as a new version under OUT (default: two-tower + FAISS + wide & deep ranker)."""
    import json

    if (data is None) == (from_topic is None):
        raise typer.BadParameter("give exactly one of --data or --from-topic")
    frame, catalogue = load_data_option(data) if data is not None else _topic_frame(from_topic, since, until)
    data = data or f"topic {from_topic} [{since or 'start'}, {until or 'now'})"
    typer.echo(f"{len(frame):,} interactions from {data}", err=True)
    if model == "hybrid":
        from consumers.training.hybrid_training import publish_hybrid
        from model.hybrid.conversion import conversion_summary
        from streamrec.settings import get_settings

        path, trained = publish_hybrid(frame, out, get_settings(), log_events=log_events, neural=neural,
                                       tune_als=tune_als)
        typer.echo(json.dumps({"examples": trained.examples.next_in_candidates, "triggers": trained.examples.logged,
                               "best_epoch": trained.report.best_epoch, "seconds": trained.seconds,
                               "conversion": conversion_summary(trained.conversion)}, indent=2))
        typer.echo(f"hybrid written to {path}")
        return
    if model != "two-tower":
        from model.registry import ModelUnavailable, fit_and_publish

        try:
            path = fit_and_publish(model, frame, out, epochs=epochs)
        except ModelUnavailable as error:
            raise typer.BadParameter(str(error), param_hint="--model") from error
        typer.echo(f"{model} written to {path}")
        return
    from model.training import train_bundle

    bundle = train_bundle(frame, training_config(epochs, embedding_dim, ranker, ranker_epochs, l2),
                          catalogue=catalogue, trained_on=data)
    path = bundle.save(out)
    typer.echo(json.dumps(bundle.metrics, indent=2, default=str))
    typer.echo(f"bundle written to {path}")


def recommend(
    user: str = typer.Argument(..., help="User id"),
    k: int = typer.Option(10, min=1),
    item: list[str] = typer.Option([], help="Items in the current session, newest first (repeatable)"),
    bundle: Path | None = typer.Option(None, help="Bundle folder (default: newest under STREAMREC_MODEL_DIR)"),
) -> None:
    """Top-k products for a user (their training history, or the session items given with --item)."""
    from model.recommender import RecommendationRequest
    from streamrec.session_store import SessionContext

    model = _recommender(bundle)
    context = SessionContext(user_id=user, session_id="cli", recent_items=tuple(item)) if item else None
    ranked = model.recommend(RecommendationRequest(user_id=user, k=k, context=context))
    _print_items(f"{model.name} {model.version} for {user}", [(s.item_id, s.score) for s in ranked])

def similar(
    item: str = typer.Argument(..., help="Item id"),
    k: int = typer.Option(10, min=1),
    bundle: Path | None = typer.Option(None, help="Bundle folder (default: newest under STREAMREC_MODEL_DIR)"),
) -> None:
    """Items closest to ITEM in the item tower's embedding space."""
    model = _recommender(bundle)
    _print_items(f"similar to {item}", [(s.item_id, s.score) for s in model.similar_items(item, k)])

def target_users_command(
    item: str = typer.Argument(..., help="The promoted item"),
    k: int = typer.Option(20, min=1),
    offline: bool = typer.Option(False, help="Score the bundle's training users instead of the users in Redis"),
    bundle: Path | None = typer.Option(None, help="Bundle folder (default: newest under STREAMREC_MODEL_DIR)"),
) -> None:
    """Which users to notify when ITEM is promoted, scored with their latest session context."""
    from model.targeting import target_users, target_users_from_store
    from streamrec.session_store import SessionContext, SessionStore
    from streamrec.settings import get_settings

    model = _two_tower(bundle)
    if offline:
        contexts = [(u, SessionContext(user_id=u, session_id="", user_recent_items=tuple(items)))
                    for u, items in model.bundle.user_history.items()]
        users = target_users(model, item, k, contexts)
    else:
        users = target_users_from_store(model, SessionStore.from_settings(get_settings()), item, k)
    _print_items(f"users to notify about {item}", [(u.user_id, u.score) for u in users])

def offers(
    user: str = typer.Argument(..., help="User id"),
    offer_type: str = typer.Option("category", help="category, brand or price_band"),
    k: int = typer.Option(5, min=1),
    bundle: Path | None = typer.Option(None, help="Bundle folder (default: newest under STREAMREC_MODEL_DIR)"),
) -> None:
    """Recommend a category, brand or price band (not an item) for a user."""
    from model.offers import recommend_offers
    from model.recommender import RecommendationRequest

    model = _two_tower(bundle)
    query = model.query_vector(RecommendationRequest(user_id=user, k=k))
    ranked = recommend_offers(model.spec, model.bundle.item_vectors, query, offer_type, k,
                              model.bundle.config.two_tower.temperature)
    _print_items(f"{offer_type} offers for {user}", ranked)


def trainer(
    topic: str = typer.Option(None, "--topic", help="Events topic (default: STREAMREC_EVENTS_TOPIC)"),
    window_hours: float = typer.Option(24.0, "--window-hours", help="Train on the last N hours of event time"),
    every_minutes: float = typer.Option(60.0, "--every-minutes", help="Start a round every N minutes"),
    out: Path = typer.Option(None, "--out", help="Model folder the workers serve (default: STREAMREC_MODEL_DIR)"),
    rounds: int = typer.Option(None, "--rounds", help="Stop after N rounds (default: until SIGTERM/SIGINT)"),
    min_events: int = typer.Option(1000, "--min-events", help="Skip a round with fewer events in the window"),
    neural: bool = typer.Option(True, "--neural/--no-neural", help="Include the GRU session encoder as a source"),
    keep: int = typer.Option(3, "--keep", help="Versions kept in the model folder"),
    tune_als: bool = typer.Option(
        False, "--tune-als/--no-tune-als",
        help="Each round chooses the ALS source's settings on a holdout of its window (as `train --tune-als`)"),
) -> None:
    """Retrain the hybrid on a sliding window of the events topic and publish it; workers swap it in live."""
    import signal
    import threading

    from consumers.training.trainer import run_trainer
    from streamrec.settings import get_settings

    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    done = run_trainer(settings, topic or settings.events_topic, window_hours * 3600, every_minutes * 60,
                       out or settings.model_dir, stop, rounds=rounds, min_events=min_events, neural=neural,
                       keep=keep, tune_als=tune_als)
    for result in done:
        typer.echo(result.model_dump_json())


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("trainer")(trainer)
    app.command("recommend")(recommend)
    app.command("similar")(similar)
    app.command("target-users")(target_users_command)
    app.command("offers")(offers)
