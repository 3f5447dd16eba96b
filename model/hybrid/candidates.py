"""The union of every source's top-N for a batch of triggers, with where each candidate came from.

One call per source per batch (`recommend_batch`), each asked for `depth` items under the request's own exclusions
(consumed, just notified), so the ranker never sees what the filters would drop. Serving and the logging of
training examples both call `gather`: the candidates a model is trained on are the ones it will be served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import NamedTuple

import numpy as np
import pandas as pd

from model.recommender import RankedColumns, RecommendationRequest, Recommender
from streamrec.stage_timing import timed


class Hit(NamedTuple):
    rank: int  # 0-based position in the source's list
    score: float
    top_score: float  # the source's best score for this trigger (scores are compared within a list only)


@dataclass
class CandidateSet:
    """One trigger's candidates (first-seen order over the sources) and, per source, columns over them: the
    candidate's rank in that source's list (-1: not in it) and its score there (0: not in it), and the source's
    best score for the trigger. Columns, not an object per hit: serving makes some 50,000 hits per batch."""

    request: RecommendationRequest
    items: list[str]
    ranks: dict[str, np.ndarray]  # source -> int32 per candidate
    scores: dict[str, np.ndarray]  # source -> float64 per candidate
    top_scores: dict[str, float]

    @property
    def hits(self) -> list[dict[str, Hit]]:
        """Per candidate, its hits by source (for reading and tests; serving uses the columns)."""
        out: list[dict[str, Hit]] = [{} for _ in self.items]
        for name, ranks in self.ranks.items():
            for row in np.flatnonzero(ranks >= 0):
                out[row][name] = Hit(int(ranks[row]), float(self.scores[name][row]), self.top_scores[name])
        return out

    def fused(self) -> np.ndarray:
        """Reciprocal-rank fusion per candidate (k = 60, as Cormack et al.)."""
        total = np.zeros(len(self.items))
        for ranks in self.ranks.values():
            total += np.where(ranks >= 0, 1.0 / (60.0 + ranks), 0.0)
        return total


def gather(requests: Sequence[RecommendationRequest], sources: Mapping[str, Recommender], depth: int,
           max_candidates: int) -> list[CandidateSet]:
    """Per request: the union of the sources' top-`depth`, at most `max_candidates` (best reciprocal-rank sum kept,
    ties in first-seen order)."""
    asked = [replace(r, k=depth) for r in requests]
    answers = {}
    for name, source in sources.items():
        with timed(f"recommend: source {name}"):
            answers[name] = source.recommend_columns(asked)
    with timed("recommend: union"):
        return unions(requests, answers, max_candidates)


def unions(requests: Sequence[RecommendationRequest], answers: Mapping[str, Sequence[RankedColumns]],
           max_candidates: int) -> list[CandidateSet]:
    """Each request's union of its answers (`answers[source][j]` is request j's), the whole batch at once.

    Per request, candidates are numbered in first-seen order over the sources (in `answers`' order, each list best
    first); an item the request excludes is dropped, the others keep their rank in the source's list; a source that
    lists an item twice keeps the first listing. Items are numbered by one hash pass over the batch's strings
    (`pandas.factorize`, in C) instead of a dictionary step per listed item: a batch lists some 57,000."""
    names = list(answers)
    n_requests, n_sources = len(requests), len(names)
    if not n_requests:
        return []
    per_list = [answers[name][j] for j in range(n_requests) for name in names]  # request-major, then source
    lengths = np.fromiter(map(len, (columns.items for columns in per_list)), np.int64, len(per_list))
    listed = int(lengths.sum())
    excluded = [request.exclude for request in requests]
    exclude_lengths = np.fromiter(map(len, excluded), np.int64, n_requests)
    strings = np.empty(listed + int(exclude_lengths.sum()), dtype=object)
    strings[:listed] = list(chain.from_iterable(columns.items for columns in per_list))
    strings[listed:] = list(chain.from_iterable(excluded))
    codes, uniques = pd.factorize(strings)
    n_unique = max(len(uniques), 1)
    list_index = np.repeat(np.arange(len(per_list), dtype=np.int64), lengths)
    request_of = list_index // n_sources
    source_of = list_index % n_sources
    rank_of = np.arange(listed, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    scores = np.concatenate([np.asarray(columns.scores, np.float64) for columns in per_list])
    tops = [float(columns.scores[0]) if len(columns.items) else 0.0 for columns in per_list]
    item_codes = codes[:listed]
    pair = request_of * n_unique + item_codes  # (request, item)
    if len(strings) > listed:
        banned = np.sort(np.repeat(np.arange(n_requests, dtype=np.int64), exclude_lengths) * n_unique
                         + codes[listed:])
        at = np.minimum(np.searchsorted(banned, pair), len(banned) - 1)
        allowed = banned[at] != pair
        if not allowed.all():  # the sources drop excluded items themselves: this rarely removes any
            pair, request_of, source_of, rank_of, scores, item_codes = (
                pair[allowed], request_of[allowed], source_of[allowed], rank_of[allowed], scores[allowed],
                item_codes[allowed])
    # Candidate numbers in first-seen order: factorize numbers the (request, item) pairs in order of appearance,
    # and a request's pairs all appear after the previous request's, so its candidates are one run of numbers.
    candidate, _ = pd.factorize(pair)
    n_candidates = int(candidate.max()) + 1 if len(candidate) else 0
    listing = candidate * n_sources + source_of
    if len(listing) and np.bincount(listing).max() > 1:  # a source listed an item twice: its first listing counts
        _, first = np.unique(listing, return_index=True)
        candidate, request_of, source_of, rank_of, scores = (
            candidate[first], request_of[first], source_of[first], rank_of[first], scores[first])
        item_codes = item_codes[first]
    candidate_request = np.zeros(n_candidates, np.int64)
    candidate_request[candidate] = request_of
    candidate_item = np.zeros(n_candidates, np.int64)
    candidate_item[candidate] = item_codes
    sizes = np.bincount(candidate_request, minlength=n_requests)
    starts = np.cumsum(sizes) - sizes
    # A request with more than `max_candidates` keeps its best by reciprocal-rank fusion (k = 60, as Cormack et
    # al.), best first and ties in first-seen order; the others keep first-seen order.
    fused = np.bincount(candidate, weights=1.0 / (60.0 + rank_of), minlength=n_candidates)
    cut = np.where((sizes > max_candidates)[candidate_request], -fused, 0.0)
    order = np.lexsort((cut, candidate_request))  # by request, then cut; stable, so ties stay in first-seen order
    row = np.empty(n_candidates, np.int64)
    row[order] = np.arange(n_candidates) - starts[candidate_request[order]]
    kept = np.minimum(sizes, max_candidates)
    element_row = row[candidate]
    listed_kept = element_row < max_candidates
    blocks = np.cumsum(n_sources * kept) - n_sources * kept  # request j's (sources x candidates) block
    on = request_of[listed_kept]
    cell = blocks[on] + source_of[listed_kept] * kept[on] + element_row[listed_kept]
    rank_cells = np.full(int((n_sources * kept).sum()), -1, np.int32)
    score_cells = np.zeros(len(rank_cells))
    rank_cells[cell] = rank_of[listed_kept]
    score_cells[cell] = scores[listed_kept]
    ordered_items = uniques[candidate_item[order]]
    out = []
    for j, request in enumerate(requests):
        n, block, start = int(kept[j]), int(blocks[j]), int(starts[j])
        ranks = rank_cells[block : block + n_sources * n].reshape(n_sources, n)
        values = score_cells[block : block + n_sources * n].reshape(n_sources, n)
        out.append(CandidateSet(request, ordered_items[start : start + n].tolist(),
                                dict(zip(names, ranks, strict=True)), dict(zip(names, values, strict=True)),
                                dict(zip(names, tops[j * n_sources : (j + 1) * n_sources], strict=True))))
    return out


def reciprocal_rank_order(candidates: CandidateSet) -> np.ndarray:
    """The untrained blend: reciprocal-rank fusion (k = 60, as Cormack et al.), one score per candidate."""
    return candidates.fused()
