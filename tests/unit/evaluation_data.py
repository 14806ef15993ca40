"""Hand-made `bazaar load --out` and `bazaar chaos --out` folders in the shared formats, for the
evaluation's tests. Numbers are chosen to make the direction of each effect unmistakable."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

PS = (0.0, 0.2, 0.4, 0.6, 0.8)
STOCKS = ("tesla", "ford", "apple", "amazon", "nvidia", "intel", "meta", "nike", "amc", "gamestop")
CAPACITY = 8


def _types(p: float, lookup_ms: float, trade_ms: float, query_ms: float) -> dict:
    def stats(count: int, p50: float) -> dict:
        if count == 0:
            return {"count": 0, "errors": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None,
                    "max_ms": None}
        return {"count": count, "errors": 0, "p50_ms": p50, "p95_ms": p50 * 2, "p99_ms": p50 * 3,
                "mean_ms": p50 * 1.2, "max_ms": p50 * 5}

    trades = round(1000 * p)
    return {"lookup": stats(1000, lookup_ms), "trade": stats(trades, trade_ms), "query": stats(trades, query_ms)}


def lookup_ms(cache: str, p: float, cache_faster: bool, on_trend: float) -> float:
    """Lookup p50: 1 ms with the cache at p=0 (growing by on_trend per unit p), 4 ms without, or
    swapped when the cache is not the faster one."""
    on, off = 1.0 + on_trend * p, 4.0
    if not cache_faster:
        on, off = off + on_trend * p, 1.0
    return on if cache == "on" else off


def write_load_dir(directory: Path, *, cache_faster: bool = True, on_trend: float = 2.0,
                   hit_rates: tuple[float, float] = (0.9, 0.5), events: bool = True) -> Path:
    """summary.json (+ cache-events.json, requests.csv). Hit rate goes linearly from hit_rates[0] at
    p=0 to hit_rates[1] at p=0.8."""
    directory.mkdir(parents=True, exist_ok=True)
    runs = []
    for cache in ("on", "off"):
        for p in PS:
            hit_rate = hit_rates[0] + (hit_rates[1] - hit_rates[0]) * p / PS[-1]
            runs.append({
                "cache": cache, "p": p, "duration_s": 2.0, "requests": 1000 + 2 * round(1000 * p),
                "throughput_rps": 500.0 + (100 if cache == "on" else 0), "errors": 0,
                "cache_report": ({"hits": round(1000 * hit_rate), "misses": 1000 - round(1000 * hit_rate),
                                  "evictions": 40, "hit_rate": hit_rate} if cache == "on" else None),
                "types": _types(p, lookup_ms(cache, p, cache_faster, on_trend), 20.0 + 5 * p, 3.0),
            })
    settings = {"clients": 5, "requests": 200, "p": list(PS), "cache": ["on", "off"], "url": None}
    (directory / "summary.json").write_text(json.dumps({"settings": settings, "runs": runs}))
    if events:
        (directory / "cache-events.json").write_text(json.dumps({"runs": [_events(p) for p in PS]}))
    with open(directory / "requests.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cache", "p", "client", "type", "start", "latency_ms", "status", "outcome"])
        w.writerow(["on", 0.2, 0, "lookup", 0.001, 1.1, 200, "ok"])
        w.writerow(["on", 0.2, 0, "trade", 0.003, 21.0, 200, "ok"])
    return directory


def _events(p: float) -> dict:
    """An LRU of CAPACITY over random lookups; a trade (probability p) invalidates its stock."""
    rng = random.Random(p)
    cached: list[str] = []
    events = []
    for i in range(300):
        t = round(i * 0.006, 4)
        name = rng.choice(STOCKS)
        if name in cached:
            cached.remove(name)
            cached.append(name)
        else:
            if len(cached) == CAPACITY:
                events.append({"t": t, "kind": "evict", "name": cached.pop(0)})
            cached.append(name)
            events.append({"t": t, "kind": "insert", "name": name})
        if rng.random() < p and name in cached:
            cached.remove(name)
            events.append({"t": t + 0.002, "kind": "invalidate", "name": name})
    return {"p": p, "capacity": CAPACITY, "names_at_start": [], "events": events}


def write_chaos_dir(directory: Path, *, identical: bool = True, errors: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    faults = [
        {"at": 2.0, "kind": "kill", "target": "order-3", "was_leader": True, "pause": 0.5, "back": 3.0},
        {"at": 5.0, "kind": "stop", "target": "catalog", "was_leader": False, "pause": 1.0, "back": 6.0},
        {"at": 7.0, "kind": "stop", "target": "order-2", "was_leader": True, "pause": 1.5, "back": 8.5},
    ]
    invariants = [{"name": f"I{i}", "passed": True, "detail": f"check {i}"} for i in range(1, 7)]
    if not identical:
        invariants[4] = {"name": "I5", "passed": False, "detail": "replica 2 differs from replica 1 at order 7"}
    doc = {"duration": 10, "seed": 7, "faults": faults, "failovers": [0.7, 1.6], "invariants": invariants,
           "clients": 4, "fault_every": 5, "orders": {"acknowledged": 190, "refused": 0, "in_doubt": 0}}
    (directory / "faults.json").write_text(json.dumps(doc))
    with open(directory / "attempts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["client", "key", "sent", "done", "latency_ms", "outcome", "number"])
        number = 0
        for i in range(200):
            sent = i * 0.05
            outcome, latency = "ok", 20.0 + (i % 7)
            if errors and i in (41, 42):
                outcome, latency = "connection error", 5.0
            elif errors and i == 101:
                outcome, latency = "503 no catalog", 3.0
            elif errors and i == 141:
                outcome, latency = "timeout", 5000.0
            w.writerow([i % 4, f"chaos-{i}", f"{sent:.6f}", f"{sent + latency / 1000:.6f}", latency, outcome,
                        number if outcome == "ok" else ""])
            number += outcome == "ok"
    return directory
