"""Latency statistics. Plain functions, no I/O.

The project's one percentile: numpy.percentile with its default method, linear interpolation
between the closest ranks (Hyndman and Fan's type 7): for n sorted values x[0..n-1], the p-th
percentile is at position h = (n - 1) * p / 100, between x[floor(h)] and x[floor(h) + 1]. For
1..100 that gives p50 = 50.5, p95 = 95.05 and p99 = 99.01. `bazaar load`, `bazaar chaos`,
`bazaar plot` and the bench all use it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0 <= p <= 100) of `values` by numpy.percentile (linear
    interpolation); None for none."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {p!r}")
    if len(values) == 0:
        return None
    return float(numpy.percentile(values, p))


def summarise(latencies_ms: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50/p95/p99, mean and max of latencies in milliseconds (None when there are none)."""
    summary: dict[str, float | int | None] = {"count": len(latencies_ms)}
    for p in PERCENTILES:
        summary[f"p{p}_ms"] = percentile(latencies_ms, p)
    summary["mean_ms"] = math.fsum(latencies_ms) / len(latencies_ms) if latencies_ms else None
    summary["max_ms"] = max(latencies_ms) if latencies_ms else None
    return summary


def hit_rate(hits: int, misses: int) -> float | None:
    """hits / (hits + misses), or None when the cache was not asked at all."""
    asked = hits + misses
    return hits / asked if asked else None
