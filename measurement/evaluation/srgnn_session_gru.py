"""The session GRU on the SR-GNN benchmarks: trained epoch by epoch, judged on every test prefix after each one.

Registry models are fitted once and scored by `session_protocol.evaluate_next_item`; the GRU is the one model of
this protocol whose figures are wanted after every epoch (the training curve beside NARM and SR-GNN), so it runs
its own loop here and hands back the same `MetricRow`s (HR@20, MRR@20 as fractions) that the report writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.datasets.srgnn import PrefixSamples, SessionBenchmark, session_prefixes
from model.metrics import MetricRow, hit_rate_at_k, mrr_at_k

K = 20
MODEL = "session-gru"


@dataclass(frozen=True)
class SessionGRUTraining:
    """The options `streamrec evaluate srgnn` passes for the session GRU (everything else: the model's defaults)."""

    epochs: int = 7
    batch_size: int = 512
    embedding_dim: int = 100
    learning_rate: float = 1e-3
    lr_decay: float = 0.7
    scale: float = 12.0
    max_len: int = 20
    max_batches: int | None = None  # cap batches per epoch (quick trial runs)
    validation: float = 0.0  # hold out this fraction of the latest training sessions; stop early on it
    patience: int = 2  # 1 stopped YooChoose-1/64 at epoch 2, where validation MRR dipped before rising for 4 more
    seed: int = 7  # initial weights and batch order: another seed is another member of an ensemble

    def config_overrides(self) -> dict[str, object]:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "embedding_dim": self.embedding_dim,
                "hidden_units": self.embedding_dim, "learning_rate": self.learning_rate, "lr_decay": self.lr_decay,
                "scale": self.scale, "max_len": self.max_len, "seed": self.seed}


@dataclass(frozen=True)
class GRUHeadline:
    """What the report shows for the GRU so far: the headline epoch's rows, every epoch's rows, the run's facts."""

    rows: list[MetricRow]  # HR@20 / MRR@20 of the headline epoch (slice "all") and fit_seconds
    epochs: list[MetricRow]  # the same figures after every epoch (slice "epoch NN", "validation, epoch NN")
    note: str


def score_top_k(top: np.ndarray, targets: np.ndarray, k: int = K) -> tuple[float, float]:
    """HR@k and MRR@k as fractions from (n, k) ranked item ids, through `model.metrics` like every other report."""
    hr = mrr = 0.0
    for ranked, target in zip(top.tolist(), targets.tolist(), strict=True):
        hr += hit_rate_at_k(ranked, {target}, k)
        mrr += mrr_at_k(ranked, {target}, k)
    return hr / len(targets), mrr / len(targets)


def metric_pair(slice_name: str, hr: float, mrr: float, n: int, model: str = MODEL) -> list[MetricRow]:
    """HR@20 and MRR@20 of one model on one slice, as report rows."""
    return [MetricRow(model, "next", slice_name, "HR", K, hr, n),
            MetricRow(model, "next", slice_name, "MRR", K, mrr, n)]


def run_session_gru(
    bench: SessionBenchmark,
    model_dir: Path,
    training: SessionGRUTraining,
    published: Mapping[str, tuple[float, float]],
    on_epoch: Callable[[GRUHeadline], None] | None = None,
    progress: bool = True,
) -> GRUHeadline:
    """Train the GRU+attention model, evaluating on the test prefixes after each epoch.

    Without validation the headline is the LAST epoch (the number of epochs is fixed up front, not picked on
    test). With `training.validation`, the most recent sessions of the training data are held out, training
    stops after `patience` epochs without a better validation HR@20 + MRR@20, and the headline is the test
    figure of the best validation epoch. Every epoch's figures go to `model_dir/history.json` and a PNG beside
    the folder (with NARM's and SR-GNN's `published` HR@20 / MRR@20 in %); `on_epoch` gets the headline so far
    after each epoch.
    """
    from model.session_gru.network import SessionModelConfig, build_model, rank_top_k
    from model.session_gru.recommender import SessionModelRecommender
    from model.session_gru.training import train_next_item_model

    config = SessionModelConfig(n_items=bench.n_items, **training.config_overrides())
    train_samples, validation = bench.train, None
    if training.validation > 0:
        train_samples, validation = split_validation(bench, training.validation, config.max_len)
    model = build_model(config)
    counts = np.bincount(bench.train_sessions["item"].to_numpy(), minlength=bench.n_items + 1)
    counts[0] = -1
    recommender = SessionModelRecommender.from_trained(
        model, [str(i) for i in range(1, bench.n_items + 1)], np.argsort(-counts, kind="stable")[:1000]
    )
    epochs: list[MetricRow] = []
    history: list[dict[str, object]] = []
    train_seconds = 0.0
    best, since_best = -1.0, 0
    best_pick: tuple[list[MetricRow], str] = ([], "")
    headline = GRUHeadline([], [], "")

    # Model selection never reads the test split: without validation the last epoch's weights are kept (the epoch
    # count is fixed up front); with validation, the best validation epoch's.
    def evaluate(epoch: int, record: dict) -> bool:
        nonlocal train_seconds, best, since_best, best_pick, headline
        train_seconds += record["seconds"]
        started = time.perf_counter()
        hr, mrr = score_top_k(rank_top_k(model, bench.test, K), bench.test.targets)
        note = f"epoch {epoch}/{config.epochs}, loss {record['loss']:.4f}"
        epochs.extend(metric_pair(f"epoch {epoch:02d}", hr, mrr, len(bench.test)))
        selection = None
        if validation is not None:
            val_hr, val_mrr = score_top_k(rank_top_k(model, validation, K), validation.targets)
            note += (f", picked on validation (last {training.validation:.0%} of sessions): "
                     f"{100 * val_hr:.2f}/{100 * val_mrr:.2f} %")
            epochs.extend(metric_pair(f"validation, epoch {epoch:02d}", val_hr, val_mrr, len(validation)))
            selection = val_hr + val_mrr
        eval_seconds = time.perf_counter() - started
        note += f", train {train_seconds:.0f} s, eval {eval_seconds:.0f} s"
        fit = MetricRow(MODEL, "all", "all", "fit_seconds", None, round(train_seconds, 2), 0)
        current = ([*metric_pair("all", hr, mrr, len(bench.test)), fit], note)
        history.append({"epoch": epoch, "loss": record["loss"], "train_seconds": train_seconds,
                        "eval_seconds": eval_seconds, "HR@20": hr, "MRR@20": mrr, "note": note})
        model_dir.mkdir(parents=True, exist_ok=True)  # written every epoch so a cut-off run keeps its curve
        (model_dir / "history.json").write_text(json.dumps(history, indent=2))
        plot_history(bench.name, [e for e in epochs if e.slice.startswith("epoch")], published,
                     model_dir.parent / f"{model_dir.name}-epochs.png")
        if selection is None:
            recommender.save(model_dir)  # the latest epoch, whatever the test figures say
        elif selection > best:
            best, best_pick, since_best = selection, current, 0
            recommender.save(model_dir)
        else:
            since_best += 1
        rows, shown_note = best_pick if validation is not None else current
        headline = GRUHeadline(rows, list(epochs), shown_note)
        if on_epoch is not None:
            on_epoch(headline)
        return validation is not None and since_best >= training.patience

    train_next_item_model(model, train_samples, on_epoch_end=evaluate, progress=progress,
                          max_batches=training.max_batches)
    return headline


def split_validation(bench: SessionBenchmark, fraction: float, max_len: int) -> tuple[PrefixSamples, PrefixSamples]:
    """Prefixes of the older sessions for training, of the most recent `fraction` for validation (time order)."""
    older, recent = split_sessions(bench, fraction)
    return session_prefixes(older, max_len), session_prefixes(recent, max_len)


def split_sessions(bench: SessionBenchmark, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training sessions (long form) split in time order: the older ones, and the most recent `fraction`."""
    sessions = bench.train_sessions
    ids = np.unique(sessions["session"].to_numpy())  # session numbers follow time
    cutoff = ids[int(len(ids) * (1.0 - fraction))]
    return sessions[sessions["session"] < cutoff], sessions[sessions["session"] >= cutoff]


def plot_history(dataset: str, rows: list[MetricRow], published: Mapping[str, tuple[float, float]], png: Path) -> Path:
    """Test HR@20 / MRR@20 (in %) after every epoch, with NARM's and SR-GNN's published figures as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, column in ((axes[0], "HR", 0), (axes[1], "MRR", 1)):
        values = [100 * r.value for r in rows if r.metric == metric]
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", label="GRU+attention (ours)")
        for name, style in (("NARM", "--"), ("SR-GNN", ":")):
            ax.axhline(published[name][column], linestyle=style, color="grey", label=f"{name} (published)")
        ax.set_xticks(epochs)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{metric}@20 %")
        ax.legend(fontsize=8)
    fig.suptitle(f"{dataset}: test figures after each epoch")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png

