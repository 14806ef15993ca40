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
REPEATS = 5  # timings of each kind on each log, in turns; the best is kept (the least disturbed)


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


class _Timings:
    """The best time per item of each kind of lookup on one log, over several rounds."""

    def __init__(self, directory: Path, stocks: Sequence[Stock], history: int) -> None:
        self.store = OrderStore(directory, table_id(stocks))
        self.fresh = new_keys(LOOKUPS, "one")
        self.held = held_keys(history, LOOKUPS)
        self.batches = [new_keys(BATCH, f"batch-{i}") for i in range(LOOKUPS // BATCH)]
        self.best = {"new": float("inf"), "held": float("inf"), "batch": float("inf")}

    def round(self) -> None:
        store = self.store
        self._time("new", lambda: [store.find_key(k) for k in self.fresh], len(self.fresh))
        if self.held:
            self._time("held", lambda: [store.find_key(k) for k in self.held], len(self.held))
        self._time("batch", lambda: [store.find_keys(b) for b in self.batches], BATCH * len(self.batches))

    def _time(self, kind: str, run: Callable[[], object], items: int) -> None:
        started = time.perf_counter()
        run()
        self.best[kind] = min(self.best[kind], (time.perf_counter() - started) / items)

    def cost(self) -> KeyCost:
        return KeyCost(new=self.best["new"], held=self.best["held"] if self.held else None, batch=self.best["batch"])


def measure(logs: Sequence[tuple[Path, int]], stocks: Sequence[Stock], repeats: int = REPEATS) -> list[KeyCost]:
    """The costs on each log (a directory and the orders seeded in it), timed in turns so that a
    change in the machine's load hits them all alike; each log is opened as a replica opens
    it, and closed again."""
    timings: list[_Timings] = []
    try:
        for directory, history in logs:
            timings.append(_Timings(directory, stocks, history))
        for _ in range(repeats):
            for t in timings:
                t.round()
        return [t.cost() for t in timings]
    finally:
        for t in timings:
            t.store.close()
