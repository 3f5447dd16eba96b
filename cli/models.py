"""Model commands: train a bundle, ask it for recommendations, similar items, users to target, offers; benchmarks.

TensorFlow and FAISS are imported inside the commands so `streamrec --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

DATA_HELP = (
    "Training data: 'sim:N[:SEED]' (simulated shop with N events), the ASOS folder "
    "(../shared/data/asos-dsf2020, its train split), or an event log file (.parquet / .csv)."
)


def _load_training_data(data: str):
    """(interactions frame, catalogue frame or None) for the `--data` forms of `train`."""
    from model.interactions import events_to_frame

    if data.startswith("sim:"):
        from measurement.evaluation.simulation_benchmark import catalogue_frame
        from producers.simulator import simulate

        parts = data.split(":")
        world, events = simulate(int(parts[1]), seed=int(parts[2]) if len(parts) > 2 else 7)
        return events_to_frame(events), catalogue_frame(world)
    path = Path(data)
    if path.is_dir():
        from model.datasets.asos_frame import asos_train_valid

        return asos_train_valid(path)[0], None
    if path.is_file():
        from model.datasets.event_log import read_event_log

        return events_to_frame(read_event_log(path)), None
    raise typer.BadParameter(f"{data!r} is neither sim:N, a folder nor a file", param_hint="--data")


def _recommender(bundle: Path | None):
    from model.bundle import ModelBundle
    from model.bundle_paths import newest_bundle
    from model.two_tower.recommender import TwoTowerRecommender
    from streamrec.settings import get_settings

    path = bundle or newest_bundle(get_settings().model_dir)
    if path is None:
        raise typer.BadParameter(f"no bundle under {get_settings().model_dir}; run `streamrec train` first")
    return TwoTowerRecommender(ModelBundle.load(path))


def _training_config(epochs: int, embedding_dim: int, ranker: bool, ranker_epochs: int, l2: float = 1e-4):
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


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        data: str = typer.Option(..., help=DATA_HELP),
        out: Path = typer.Option(Path("artifacts/models"), help="Model folder; the bundle is written to OUT/<version>"),
        epochs: int = typer.Option(20, help="Two-tower epochs at most (early stopping on a later time slice)"),
        embedding_dim: int = typer.Option(32, help="Embedding size of both towers"),
        ranker: bool = typer.Option(True, help="Also train the wide & deep ranker"),
        ranker_epochs: int = typer.Option(8, help="Ranker epochs at most"),
        l2: float = typer.Option(1e-4, help="L2 penalty on the two-tower embeddings"),
    ) -> None:
        """Train two-tower retrieval, its FAISS index and the wide & deep ranker; write a versioned bundle."""
        import json

        from model.training import train_bundle

        frame, catalogue = _load_training_data(data)
        typer.echo(f"{len(frame):,} interactions from {data}")
        bundle = train_bundle(frame, _training_config(epochs, embedding_dim, ranker, ranker_epochs, l2),
                              catalogue=catalogue, trained_on=data)
        path = bundle.save(out)
        typer.echo(json.dumps(bundle.metrics, indent=2, default=str))
        typer.echo(f"bundle written to {path}")

    @app.command("recommend")
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

    @app.command("similar")
    def similar(
        item: str = typer.Argument(..., help="Item id"),
        k: int = typer.Option(10, min=1),
        bundle: Path | None = typer.Option(None, help="Bundle folder (default: newest under STREAMREC_MODEL_DIR)"),
    ) -> None:
        """Items closest to ITEM in the item tower's embedding space."""
        model = _recommender(bundle)
        _print_items(f"similar to {item}", [(s.item_id, s.score) for s in model.similar_items(item, k)])

    @app.command("target-users")
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

        model = _recommender(bundle)
        if offline:
            contexts = [(u, SessionContext(user_id=u, session_id="", user_recent_items=tuple(items)))
                        for u, items in model.bundle.user_history.items()]
            users = target_users(model, item, k, contexts)
        else:
            users = target_users_from_store(model, SessionStore.from_settings(get_settings()), item, k)
        _print_items(f"users to notify about {item}", [(u.user_id, u.score) for u in users])

    @app.command("offers")
    def offers(
        user: str = typer.Argument(..., help="User id"),
        offer_type: str = typer.Option("category", help="category, brand or price_band"),
        k: int = typer.Option(5, min=1),
        bundle: Path | None = typer.Option(None, help="Bundle folder (default: newest under STREAMREC_MODEL_DIR)"),
    ) -> None:
        """Recommend a category, brand or price band (not an item) for a user."""
        from model.offers import recommend_offers
        from model.recommender import RecommendationRequest
        from model.two_tower.examples import query_inputs

        model = _recommender(bundle)
        context = model._context_for(RecommendationRequest(user_id=user, k=k))
        query = model.encode(query_inputs(model.spec, [user], [context], [0]))[0]
        ranked = recommend_offers(model.spec, model.bundle.item_vectors, query, offer_type, k,
                                  model.bundle.config.two_tower.temperature)
        _print_items(f"{offer_type} offers for {user}", ranked)

    @app.command("asos-eval")
    def asos_eval(
        data: Path = typer.Option(Path("../shared/data/asos-dsf2020"), help="ASOS dsf2020 folder"),
        out: Path = typer.Option(Path("reports"), help="Where the table (md, csv) and the PNG go"),
        epochs: int = typer.Option(15),
        embedding_dim: int = typer.Option(64),
        l2: float = typer.Option(1e-3, help="L2 penalty on the two-tower embeddings (sparse data wants more)"),
        user_id_dropout: float = typer.Option(0.0, help="Share of training queries with the user id hidden"),
        validation: str = typer.Option(
            "per-user-holdout", help="How the two-tower picks its epochs and popularity prior: per-user-holdout "
            "(held-out train purchases of 15% of users, as the evaluation asks; then a refit on all train) or "
            "time-slice (the last 10% of the train file)"),
        ranker: bool = typer.Option(True, help="Also evaluate the ranker on top"),
        max_users: int | None = typer.Option(None, help="Evaluate on the first N users only (quick runs)"),
    ) -> None:
        """ASOS train -> valid: Recall/NDCG/HR@10/20/100 of popularity, item-item cosine, two-tower (+ ranker)."""
        from measurement.evaluation.asos_benchmark import run_asos_benchmark

        config = _training_config(epochs, embedding_dim, ranker, 4, l2)
        # ASOS never recommends what a user bought before: validate the same way.
        sparse_data = {"batch_size": 1024, "learning_rate": 2e-3, "patience": 3, "validation_excludes_history": True,
                       "user_id_dropout": user_id_dropout, "validation": validation}
        config.two_tower = config.two_tower.model_copy(update=sparse_data)
        table = run_asos_benchmark(config, data, out, max_users)
        typer.echo(table.to_string())
        typer.echo(f"written {out}/asos_eval.md, .csv, .png")

    @app.command("sim-eval")
    def sim_eval(
        events: int = typer.Option(200_000, help="Simulated events"),
        seed: int = typer.Option(7),
        out: Path = typer.Option(Path("reports")),
        epochs: int = typer.Option(20),
        l2: float = typer.Option(1e-4, help="L2 penalty on the two-tower embeddings"),
    ) -> None:
        """Simulated shop: retrieval recall and ranker AUC beside the oracle that knows the planted tastes."""
        import json

        from measurement.evaluation.simulation_benchmark import run_simulation_benchmark

        summary = run_simulation_benchmark(events, _training_config(epochs, 32, True, 8, l2), seed, out)
        keys = ("retrieval", "next_item", "ranking", "offers")
        typer.echo(json.dumps({k: summary[k] for k in keys}, indent=2, default=str))

    @app.command("serving-bench")
    def serving_bench(
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

        frame, catalogue = _load_training_data(data)
        loaded = ModelBundle.load(bundle) if bundle else train_bundle(
            frame, _training_config(10, 32, True, 4), catalogue=catalogue)
        table = benchmark_serving(loaded, trigger_requests(frame, 64), candidates=candidates)
        write_serving_report(table, out, len(loaded.index))
        typer.echo(table.to_string())
        if index_sizes:
            index_table = benchmark_index(tuple(int(s) for s in index_sizes.split(",")), k=candidates)
            write_table(index_table, out, "index_cost")
            typer.echo(index_table.to_string())
