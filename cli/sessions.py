"""`streamrec bench-sessions`: the SR-GNN session benchmark (Diginetica, YooChoose-1/64) for our session models."""

from __future__ import annotations

from pathlib import Path

import typer


def bench_sessions(
    dataset: str = typer.Option("diginetica", "--dataset", "-d", help="diginetica or yoochoose"),
    models: str = typer.Option("pop,knn,gru", "--models", help="Comma list of pop, knn (V-SKNN), gru"),
    epochs: int = typer.Option(7, "--epochs", help="GRU+attention training epochs (fixed up front)"),
    batch_size: int = typer.Option(512, "--batch-size"),
    embedding_dim: int = typer.Option(100, "--dim", help="Item embedding and session vector size"),
    learning_rate: float = typer.Option(1e-3, "--lr"),
    lr_decay: float = typer.Option(0.7, "--lr-decay", help="Learning rate factor applied after each epoch"),
    scale: float = typer.Option(12.0, "--scale", help="Softmax scale for normalised scores"),
    max_len: int = typer.Option(20, "--max-len", help="Most recent items kept per prefix"),
    max_batches: int = typer.Option(None, "--max-batches", help="Cap batches per epoch (quick trial runs)"),
    validation: float = typer.Option(
        0.0, "--validation", help="Hold out this fraction of the latest training sessions; stop early on it"
    ),
    patience: int = typer.Option(1, "--patience", help="Epochs without a better validation score before stopping"),
    data_root: Path = typer.Option(None, "--data-root", help="Folder holding <dataset>-srgnn (default ../shared/data)"),
    out: Path = typer.Option(Path("reports/sessions"), "--out", help="Where tables, plots and weights go"),
    threads: int = typer.Option(2, "--threads", help="TensorFlow intra-op threads (the machine is shared)"),
) -> None:
    """Train/evaluate session recommenders on the full catalogue; write a table (md, csv) and a PNG beside the
    published numbers. The report is rewritten after every epoch, so an interrupted run keeps its results."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from measurement.evaluation.session_benchmark import (
        run_popularity,
        run_session_knn,
        run_session_model,
        write_report,
    )
    from model.datasets.srgnn import load_benchmark

    chosen = {m.strip() for m in models.split(",") if m.strip()}
    unknown = chosen - {"pop", "knn", "gru"}
    if unknown:
        raise typer.BadParameter(f"unknown models: {sorted(unknown)}", param_hint="--models")
    bench = load_benchmark(dataset, data_root, max_len=max_len)
    typer.echo(
        f"{dataset}: {len(bench.train):,} training prefixes, {len(bench.test):,} test prefixes, {bench.n_items:,} items"
    )
    rows = []

    def report(row=None) -> None:
        if row is not None:
            rows.append(row)
            typer.echo(f"{row.model}: HR@20 {row.hr_at_20:.2f}  MRR@20 {row.mrr_at_20:.2f}  ({row.note})")
        paths = write_report(dataset, rows, out)
        typer.echo(f"table: {paths['md']}  plot: {paths['png']}")

    if "pop" in chosen:
        report(run_popularity(bench))
    if "knn" in chosen:
        report(run_session_knn(bench))
    if "gru" in chosen:
        done = len(rows)

        def on_epoch(row) -> None:  # keep only the headline epoch in the table; history has them all
            del rows[done:]
            report(row)

        run_session_model(
            bench,
            out,
            on_row=on_epoch,
            max_batches=max_batches,
            validation_fraction=validation,
            patience=patience,
            epochs=epochs,
            batch_size=batch_size,
            embedding_dim=embedding_dim,
            hidden_units=embedding_dim,
            learning_rate=learning_rate,
            lr_decay=lr_decay,
            scale=scale,
            max_len=max_len,
        )


def session_serving(
    model_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="A saved session model folder"),
    dataset: str = typer.Option("diginetica", "--dataset", "-d", help="Whose test prefixes to replay as contexts"),
    requests: int = typer.Option(300, "--requests", "-n"),
    data_root: Path = typer.Option(None, "--data-root"),
    threads: int = typer.Option(2, "--threads"),
) -> None:
    """Time single `recommend` calls of a saved session model (full-catalogue scoring, top 20)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from measurement.evaluation.session_benchmark import serving_latency
    from model.datasets.srgnn import load_benchmark
    from model.session_gru.recommender import SessionModelRecommender

    recommender = SessionModelRecommender.load(model_dir)
    bench = load_benchmark(dataset, data_root, max_len=recommender.config.max_len)
    figures = serving_latency(recommender, bench, requests)
    typer.echo(
        f"{model_dir}: {recommender.config.n_items:,} items, recommend() p50 {figures['p50_ms']:.2f} ms, "
        f"p95 {figures['p95_ms']:.2f} ms, mean {figures['mean_ms']:.2f} ms over {requests} requests"
    )


def register(app: typer.Typer) -> None:
    app.command("bench-sessions")(bench_sessions)
    app.command("session-serving")(session_serving)
