"""Latency statistics. Plain functions, no I/O.

Percentiles use linear interpolation between the closest ranks (Hyndman and Fan's type 7, the
default of numpy.percentile and of statistics.quantiles(method="inclusive")): for n sorted
values x[0..n-1], the p-th percentile is at position h = (n - 1) * p / 100, between x[floor(h)]
and x[floor(h) + 1]. For 1..100 that gives p50 = 50.5, p95 = 95.05 and p99 = 99.01. (The chaos
report uses nearest rank instead, which always names an observed value.)
"""

from __future__ import annotations

import math
from typing import Sequence

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0 <= p <= 100) of `values` by linear interpolation; None for none."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {p!r}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])


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
