"""A history of orders written straight into the stores, before the cluster starts.

Through the API 100k orders would take minutes; here they go through the stores' own write
paths (`OrderStore.write`, `CatalogStore.apply`), so the seeded state is one the system could
have reached itself:

- every replica's log holds orders 0..n-1 of epoch 1, chained (`bazaar.core.chain`), each
  under a key the front end could have generated (`fe:...`), and remembers epoch 1;
- the catalog applied exactly those trades under the same keys (its `applied` table), at
  epoch 1, so its quantities and volumes are what the log says. A new leader's reconciliation
  (`Replica._reconcile`) finds every applied key in its log and logs nothing, and the front
  end's cache, empty at start, fills from this catalog.

The trades buy a stock 1-5 shares and sell the same back, so no buy is ever refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bazaar.catalog.store import CatalogStore, Fence, Trade
from bazaar.core.chain import Record, chained
from bazaar.core.orders import BUY, SELL, Order
from bazaar.core.stock import DEFAULT_STOCKS, TradeCheck
from bazaar.order.store import Append, OrderStore, SetEpoch

SEED_EPOCH = 1
_NAMES = [s.name for s in DEFAULT_STOCKS]


class SeedError(Exception):
    """The seeded history was refused by a store; nothing should be measured on it."""


def record(number: int) -> Record:
    """Seeded order `number`: even ones buy 1-5 shares of a stock, odd ones sell them back."""
    pair = number // 2
    order = Order(number, _NAMES[pair % len(_NAMES)], BUY if number % 2 == 0 else SELL, 1 + pair % 5)
    return Record(order, SEED_EPOCH, f"fe:bench-seed-{number}")


def history(count: int) -> list[Record]:
    return [record(n) for n in range(count)]


def seed_log(directory: Path, records: list[Record]) -> None:
    store = OrderStore(directory)
    try:
        if store.last_number != -1:
            raise SeedError(f"{store.path} is not empty")
        store.write([SetEpoch(SEED_EPOCH), *(Append(e) for e in chained(records))])
    finally:
        store.close()


def copy_log(source: Path, target: Path) -> None:
    """Another replica's identical log (a closed SQLite file in WAL mode is one file)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / OrderStore.FILENAME, target / OrderStore.FILENAME)


def seed_catalog(directory: Path, records: list[Record]) -> None:
    store = CatalogStore(directory)
    try:
        trades = [Trade(r.order.name, r.order.type, r.order.quantity, r.key, SEED_EPOCH) for r in records]
        outcomes = store.apply([Fence(SEED_EPOCH), *trades])
        refused = [o for o in outcomes[1:] if o is None or o.check is not TradeCheck.OK]
        if refused:
            raise SeedError(f"the catalog refused {len(refused)} seeded trades, e.g. {refused[0]}")
    finally:
        store.close()
