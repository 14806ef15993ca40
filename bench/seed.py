"""A history of orders written straight into the stores, before the cluster starts.

Through the API 100k orders would take minutes; here they go through the stores' own write
paths (`OrderStore.write`, `CatalogStore.apply`), so the seeded state is one the system could
have reached itself:

- every replica's log is that of a leader of epoch 1 that placed n trades: a leader entry at
  index 0, then trades 0..n-1 at indices 1..n, chained (`bazaar.core.chain`), each under a key
  the front end could have generated (`fe-bench-seed-<n>`); the replica remembers epoch 1 and
  that the whole log is committed, so it answers lookups of the seeded orders at once;
- the catalog has learned exactly those trades (`applied` is n-1), so its quantities and
  volumes are what the log says and no leader has anything to ship to it; the front end's
  cache, empty at start, fills from this catalog.

The trades buy a stock 1-5 shares and sell the same back, so no buy is ever refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from bazaar.catalog.store import CatalogStore
from bazaar.core.chain import Kind, Record, chained
from bazaar.core.learner import CommittedTrade, Progress
from bazaar.core.orders import BUY, SELL
from bazaar.core.stock import STOCK_NAMES, Stock, table_id
from bazaar.order.store import Append, OrderStore, SetCommitted, SetEpoch

SEED_EPOCH = 1


class SeedError(Exception):
    """The seeded history was refused by a store; nothing should be measured on it."""


def leader_entry() -> Record:
    """The entry that opens the seeding leader's epoch: no trade, none before it."""
    return Record(0, SEED_EPOCH, Kind.LEADER, -1)


def trade(number: int) -> Record:
    """Seeded trade `number` (at index number + 1): even ones buy 1-5 shares of a stock, odd
    ones sell them back."""
    pair = number // 2
    return Record(number + 1, SEED_EPOCH, Kind.TRADE, number, STOCK_NAMES[pair % len(STOCK_NAMES)],
                  BUY if number % 2 == 0 else SELL, 1 + pair % 5, f"fe-bench-seed-{number}")


def history(count: int) -> list[Record]:
    """The whole seeded log: the leader entry, then `count` trades."""
    return [leader_entry(), *(trade(n) for n in range(count))]


def seed_log(directory: Path, records: Sequence[Record], stocks: Sequence[Stock]) -> None:
    """Write `records` as a replica's log made from `stocks`, all of it committed."""
    store = OrderStore(directory, table_id(stocks))
    try:
        if store.last_index != -1:
            raise SeedError(f"{store.path} is not empty")
        store.write([SetEpoch(SEED_EPOCH), *(Append(e) for e in chained(list(records))),
                     SetCommitted(records[-1].index)])
    finally:
        store.close()


def copy_log(source: Path, target: Path) -> None:
    """Another replica's identical log (a closed SQLite file in WAL mode is one file)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / OrderStore.FILENAME, target / OrderStore.FILENAME)


def seed_catalog(directory: Path, records: Sequence[Record], stocks: Sequence[Stock]) -> None:
    """Have a catalog made from `stocks` learn exactly the trades among `records`."""
    trades = [CommittedTrade(r.number, r.name, r.type, r.quantity) for r in records if r.is_trade]
    store = CatalogStore(directory, stocks)
    try:
        if store.applied != -1:
            raise SeedError(f"{store.path} has applied trades already (through {store.applied})")
        (result,) = store.apply([trades])
        last = trades[-1].number if trades else -1
        if result.progress is not Progress.OK or result.applied != last:
            raise SeedError(f"the catalog applied the seeded trades through {result.applied} of "
                            f"{last} ({result.progress.value})")
    finally:
        store.close()
