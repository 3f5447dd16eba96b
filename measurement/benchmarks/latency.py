"""Latency percentiles, computed one way for every benchmark that times single records or requests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LATENCY_COLUMNS = {"p50": "ms", "p95": "ms", "p99": "ms", "max": "ms"}


def latency_figures(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of the timings (NaN when there are none), unrounded: the report rounds."""
    if not len(latencies_ms):
        return dict.fromkeys(LATENCY_COLUMNS, float("nan"))
    values = np.asarray(latencies_ms, dtype=float)
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max())}
