"""What an idempotency-key lookup costs on a log of a given history: the store's own calls,
timed in the bench's process on a seeded log before any replica opens it.

A trade reaches the leader under a key, and the leader asks its log for that key first
(`ReplicaLog.logged_under`: one `OrderStore.find_key`, nearly always of a key it does not hold);
a follower asks for every key of a batch at once (`ReplicaLog._key_holders`: one
`OrderStore.find_keys`). Both go through the partial index on keys, so their cost should grow
with the depth of a B-tree, not with the number of orders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from bazaar.core.stock import Stock, table_id
from bazaar.order.store import OrderStore

BATCH = 64  # keys per find_keys: a batch of trades as a follower receives it
LOOKUPS = 2_000  # per timing
REPEATS = 3  # timings of each kind; the best is kept (the least disturbed by the machine)


@dataclass(frozen=True)
class KeyCost:
    new: float  # seconds per find_key of a key the log does not hold (a new trade, at the leader)
    held: float | None  # seconds per find_key of a key it holds (a retried trade); None: it holds none
    batch: float  # seconds per key of find_keys over BATCH keys it does not hold (a follower)


def new_keys(count: int, tag: str) -> list[str]:
    """Keys no seeded log holds (seed.trade's keys are fe-bench-seed-<n>)."""
    return [f"fe-bench-new-{tag}-{i}" for i in range(count)]


def held_keys(history: int, count: int) -> list[str]:
    """`count` keys of a seeded history of `history` orders, spread evenly over it."""
    if history <= 0:
        return []
    step = max(1, history // count)
    return [f"fe-bench-seed-{n}" for n in range(0, history, step)][:count]


def best_per_item(run: Callable[[], object], items: int, repeats: int = REPEATS) -> float:
    """Seconds per item of the fastest of `repeats` calls of `run`, which handles `items`."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / items


def measure(directory: Path, stocks: Sequence[Stock], history: int) -> KeyCost:
    """The costs on the log in `directory` (holding `history` seeded orders); the log is
    opened as a replica opens it, and closed again."""
    store = OrderStore(directory, table_id(stocks))
    try:
        fresh = new_keys(LOOKUPS, "one")
        held = held_keys(history, LOOKUPS)
        batches = [new_keys(BATCH, f"batch-{i}") for i in range(LOOKUPS // BATCH)]

        def each(keys: list[str]) -> Callable[[], object]:
            return lambda: [store.find_key(k) for k in keys]

        return KeyCost(
            new=best_per_item(each(fresh), len(fresh)),
            held=best_per_item(each(held), len(held)) if held else None,
            batch=best_per_item(lambda: [store.find_keys(b) for b in batches], BATCH * len(batches)),
        )
    finally:
        store.close()
