"""Item embeddings in a FAISS inner-product index: exact (flat) up to `exact_limit` items, HNSW above.

Rows of the index are item vocabulary indices, so a search returns what the towers and the ranker index.
The last column of an item's row holds its popularity prior (see `with_prior`), so one inner-product
search returns q.v + prior; a query whose last column is 0 searches by similarity alone.
`recall_vs_exact` measures what an approximate index loses, and is recorded in the bundle's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

EXACT_LIMIT = 200_000


@dataclass
class ItemIndex:
    index: faiss.Index
    kind: str  # "flat" or "hnsw"

    @classmethod
    def build(cls, vectors: np.ndarray, exact_limit: int = EXACT_LIMIT, hnsw_m: int = 32,
              ef_search: int = 128) -> ItemIndex:
        """Exact inner product for catalogues up to `exact_limit`, HNSW (inner product) above."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        if len(vectors) <= exact_limit:
            index: faiss.Index = faiss.IndexFlatIP(dim)
            kind = "flat"
        else:
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = ef_search
            kind = "hnsw"
        index.add(vectors)
        return cls(index, kind)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the top-k rows per query, best first; rows are -1 where fewer exist."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        return self.index.search(queries, min(k, len(self)))

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append vectors (new items); returns their row numbers."""
        start = len(self)
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return np.arange(start, len(self))

    def copy(self) -> ItemIndex:
        return ItemIndex(faiss.clone_index(self.index), self.kind)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([self.index.reconstruct(int(r)) for r in rows]) if len(rows) else np.zeros((0, self.index.d))

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> ItemIndex:
        index = faiss.read_index(str(path))
        return cls(index, "hnsw" if isinstance(index, faiss.IndexHNSWFlat) else "flat")


def serve_single_threaded() -> None:
    """One FAISS thread per process: a worker searches one small batch at a time, and on a busy machine
    OpenMP's hand-off between threads costs ~15 ms per search (flat top-200 over 50k items: 0.3 ms single)."""
    faiss.omp_set_num_threads(1)


def with_prior(item_vectors: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Item vectors with one more column holding each item's additive prior (inner product then adds it)."""
    return np.hstack([item_vectors, prior.reshape(-1, 1)]).astype(np.float32)


def query_with_prior(queries: np.ndarray, use_prior: bool = True) -> np.ndarray:
    """Queries with the matching column: 1 adds the item prior to the score, 0 leaves pure similarity."""
    column = np.full((len(queries), 1), 1.0 if use_prior else 0.0, dtype=np.float32)
    return np.hstack([queries, column]).astype(np.float32)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Brute-force top-k rows by inner product (numpy), the reference every index is checked against."""
    scores = queries @ vectors.T
    k = min(k, vectors.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def recall_vs_exact(index: ItemIndex, vectors: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Share of the exact top-k that the index returns (1.0 for a flat index)."""
    exact = exact_top_k(vectors, queries, k)
    _, found = index.search(queries, k)
    hits = [len(set(e.tolist()) & set(f.tolist())) for e, f in zip(exact, found, strict=True)]
    return float(np.sum(hits) / exact.size)
