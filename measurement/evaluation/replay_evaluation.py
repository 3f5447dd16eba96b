"""`streamrec evaluate replay`: score a replay's notifications against what each user did next.

Reads a replay folder (events.parquet, window.json, manifest.json, notifications/<model>.jsonl) and
returns long-form `MetricRow`s: rank metrics per target and slice, coverage, popularity bias,
notifications per user per day, weighted AUC per offer type, new items (`new_item_rows`), and throughput from the
manifest.

Item slices of the next-item target of product triggers: "warm-items" (first touched before the window start, the
models' training cut-off), "new-items" (first touched at or after it, whether before the trigger or not), "new-1d" /
"new-1h" (first touched at most a day / an hour before the trigger, or after it) and "cold-items" (touched by nobody
before the trigger: only an attribute or a guess can find it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from consumers.replay.records import ReplayRecord, read_records
from measurement.evaluation.ground_truth import EventLog, Targets
from measurement.evaluation.offers import price_bands, weighted_auc_by_offer
from measurement.report import EvaluationResult
from model.metrics import MetricRow, coverage_at_k, ks_up_to, popularity_percentile_at_k, rows_for
from model.serving import served_model_name
from streamrec.settings import Settings

TARGETS = ("next", "engaged", "converted")
ITEM_SLICES = ("warm-items", "new-items", "new-1d", "new-1h", "cold-items")
HOUR_MS = 3600_000
DAY_MS = 24 * HOUR_MS


def load_event_log(replay_dir: Path) -> EventLog:
    frame = pd.read_parquet(replay_dir / "events.parquet")
    window = json.loads((replay_dir / "window.json").read_text())
    start = pd.Timestamp(window["start"]) if window.get("start") else None
    return EventLog.from_frame(frame, start)


def _target_sets(targets: Targets) -> dict[str, frozenset[str]]:
    return {"next": targets.next_item, "engaged": targets.engaged, "converted": targets.converted}


def evaluate_model_records(
    model: str, records: list[ReplayRecord], log: EventLog, horizon_s: int, ks: tuple[int, ...] | None = None,
) -> list[MetricRow]:
    """All rows for one model's replayed notifications (default k: those of `KS` the lists are long enough for)."""
    ks = ks if ks is not None else ks_up_to(max((len(r.ranked) for r in records), default=0))
    rows: list[MetricRow] = []
    horizon_ms = horizon_s * 1000
    judged: list[tuple[ReplayRecord, Targets]] = []
    for record in records:
        n = record.notification
        targets = log.targets(n.trigger_event_id, n.items[0].kind, _trigger_item(record, log), horizon_ms)
        if targets is not None:
            judged.append((record, targets))
    cutoff = log.window_start_ms
    slices = {
        "all": lambda r, t: True,
        "new-users": lambda r, t: not t.returning_user,
        "returning-users": lambda r, t: t.returning_user,
        # The item slices are only meaningful for the next item, and are of product triggers: the catalogue is what
        # grows (a tool suite is small and fixed, and its easy hits would flatter the warm slice).
        "warm-items": lambda r, t: t.product and t.next_first_ms is not None and not t.next_is_new(cutoff),
        "new-items": lambda r, t: t.product and t.next_is_new(cutoff),
        "new-1d": lambda r, t: t.product and t.next_is_young(DAY_MS),
        "new-1h": lambda r, t: t.product and t.next_is_young(HOUR_MS),
        "cold-items": lambda r, t: t.product and t.cold_next,
    }
    kinds = {r.notification.items[0].kind for r, _ in judged}
    if len(kinds) > 1:  # products and tools have catalogues of very different sizes: show them apart too
        for kind in sorted(kinds):
            slices[f"{kind}s"] = lambda r, t, kind=kind: r.notification.items[0].kind == kind
    with_next = sum(1 for _, t in judged if t.next_item and t.product)
    for target in TARGETS:
        for slice_name, keep in slices.items():
            if slice_name in ITEM_SLICES and target != "next":
                continue
            pairs = [(r.ranked, _target_sets(t)[target]) for r, t in judged if keep(r, t)]
            rows += rows_for(model, target, slice_name, pairs, ks)
            if slice_name in ITEM_SLICES:  # how much of the next-item targets the slice is
                share = sum(1 for _, t in judged if t.next_item and keep(None, t)) / with_next if with_next else 0.0
                rows.append(MetricRow(model, "next", slice_name, "targets_share", None, share, with_next))
    rows += new_item_rows(model, records, log)

    lists_by_kind: dict[str, list[list[str]]] = {}
    for record in records:
        lists_by_kind.setdefault(record.notification.items[0].kind, []).append(record.ranked)
    all_lists = [lst for lists in lists_by_kind.values() for lst in lists]
    catalogue = sum(len(log.catalogue(kind)) for kind in lists_by_kind)
    percentiles: dict[str, float] = {}
    for kind in lists_by_kind:
        percentiles.update(log.popularity_percentiles(kind))
    for k in ks:
        coverage = coverage_at_k(all_lists, catalogue, k)
        popularity = popularity_percentile_at_k(all_lists, percentiles, k)
        rows.append(MetricRow(model, "all", "all", "coverage", k, coverage, len(all_lists)))
        rows.append(MetricRow(model, "all", "all", "popularity_pct", k, popularity, len(all_lists)))

    per_user = Counter(r.notification.user_id for r in records)
    rates = [per_user.get(user, 0) / len(days) for user, days in log.window_days.items() if days]
    rows.append(MetricRow(model, "all", "all", "notifications_per_user_day", None,
                          float(np.mean(rates)) if rates else float("nan"), len(rates)))

    bands = price_bands(log.attributes)
    attribute_of: dict[str, dict[str, str]] = {}
    for item, attrs in log.attributes.items():
        attribute_of[item] = {k: v for k, v in attrs.items() if k != "price"}
        if item in bands:
            attribute_of[item]["price_band"] = bands[item]
    lists = [(r.ranked, r.scores, t.engaged) for r, t in judged]
    for offer_type, (value, groups) in weighted_auc_by_offer(lists, attribute_of).items():
        rows.append(MetricRow(model, "engaged", offer_type, "wAUC", None, value, groups))
    return rows


def new_item_rows(model: str, records: Sequence[ReplayRecord], log: EventLog) -> list[MetricRow]:
    """How the model treats items it could not have been trained on (first touched at or after the window start):
    the share of notifications with such an item among the notified items (also with one first touched at most a
    day / an hour before the trigger), and per new item the minutes from its first event to the first notification
    that carries it (median and 90th percentile over those notified, and the share of new items ever notified).
    """
    cutoff = log.window_start_ms
    if cutoff is None or not records:
        return []
    first = log.first_seen_ms
    with_new = {"new-items": 0, "new-1d": 0, "new-1h": 0}
    first_notified: dict[tuple[str, str], int] = {}
    for record in records:
        n = record.notification
        at = round(n.trigger_ts.timestamp() * 1000)
        new = [(item.kind, item.item_id) for item in n.items if log.is_new(item.kind, item.item_id)]
        ages = [at - first[key] for key in new]
        with_new["new-items"] += bool(ages)
        with_new["new-1d"] += any(age <= DAY_MS for age in ages)
        with_new["new-1h"] += any(age <= HOUR_MS for age in ages)
        for key in new:
            first_notified[key] = min(first_notified.get(key, at), at)
    kinds = {item.kind for record in records for item in record.notification.items}
    new_items = [key for key in first if key[0] in kinds and log.is_new(*key)]
    rows = [MetricRow(model, "all", name, "notifications_with_new_share", None, count / len(records), len(records))
            for name, count in with_new.items()]
    # Figures with nothing to average over are left out (a NaN row would never equal itself in a comparison).
    if new_items:
        rows.append(MetricRow(model, "all", "new-items", "new_items_notified_share", None,
                              len(first_notified) / len(new_items), len(new_items)))
    minutes = np.array([(ms - first[key]) / 60_000 for key, ms in first_notified.items()])
    if len(minutes):
        rows += [MetricRow(model, "all", "new-items", f"minutes_to_first_notification_p{q}", None,
                           float(np.percentile(minutes, q)), len(minutes)) for q in (50, 90)]
    return rows


def _trigger_item(record: ReplayRecord, log: EventLog) -> str | None:
    found = log.where.get(record.notification.trigger_event_id)
    if found is None:
        return None
    user, index = found
    return log.timelines[user][index].item


def evaluate_replay(replay_dir: Path, horizon_s: int = 24 * 3600, ks: tuple[int, ...] | None = None,
                    served: str | None = None) -> EvaluationResult:
    """Score every model's notifications in a replay folder; `served` (default: what the worker serves under the
    environment's settings) is marked `"served": true` in the runs."""
    manifest = json.loads((replay_dir / "manifest.json").read_text())
    log = load_event_log(replay_dir)
    rows: list[MetricRow] = []
    models: list[str] = []
    for run in manifest["models"]:
        path = replay_dir / "notifications" / f"{run['name']}.jsonl"
        if not path.exists():
            continue
        models.append(run["name"])
        rows += evaluate_model_records(run["name"], list(read_records(path)), log, horizon_s, ks)
        rows.append(MetricRow(run["name"], "all", "all", "replay_events_per_s", None, run["events_per_s"],
                              run["window_events"]))
    served = served or served_model_name(Settings())
    info = {
        "served": served,
        "source": manifest["source"],
        "window": f"{manifest['window_start']} .. {manifest['window_end']}",
        "warmup_events": manifest["warmup_events"],
        "window_events": manifest["window_events"],
        "horizon_s": horizon_s,
        "settings": manifest["settings"],
        "skipped": manifest["skipped"],
        "runs": {r["name"]: {**{k: r[k] for k in ("triggers", "notifications", "no_candidates", "events_per_s",
                                                  "fit_seconds", "replay_seconds")}, "served": r["name"] == served}
                 for r in manifest["models"]},
    }
    return EvaluationResult(title=f"Replay of {manifest['source']}", models=models, rows=rows, info=info)
