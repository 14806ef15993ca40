"""The catalog's durable stock table: SQLite in WAL mode, fsync'd on every commit.

Lookups read an in-memory snapshot that is replaced only after a commit, so a lookup never
sees a trade that a crash could still undo, and never touches the disk.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from bazaar.core.stock import DEFAULT_STOCKS, Stock, TradeCheck, apply_trade

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stocks (
    name     TEXT    PRIMARY KEY,
    price    REAL    NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    volume   INTEGER NOT NULL CHECK (volume >= 0)
)
"""


@dataclass(frozen=True)
class Trade:
    name: str
    type: str | None
    quantity: int


@dataclass(frozen=True)
class TradeOutcome:
    check: TradeCheck
    quantity: int  # the stock's quantity after the trade (unchanged when refused)


class CatalogStore:
    FILENAME = "catalog.sqlite3"

    def __init__(self, directory: Path, initial: Iterable[Stock] = DEFAULT_STOCKS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute(_SCHEMA)
        if self._conn.execute("SELECT COUNT(*) FROM stocks").fetchone()[0] == 0:
            self._conn.executemany(
                "INSERT INTO stocks VALUES (?, ?, ?, ?)",
                [(s.name, s.price, s.quantity, s.volume) for s in initial],
            )
        self._conn.execute("COMMIT")
        self._stocks = {
            row[0]: Stock(*row)
            for row in self._conn.execute("SELECT name, price, quantity, volume FROM stocks")
        }

    def lookup(self, name: str) -> Stock | None:
        return self._stocks.get(name)

    def stocks(self) -> list[Stock]:
        return sorted(self._stocks.values(), key=lambda s: s.name)

    def apply(self, trades: list[Trade]) -> list[TradeOutcome]:
        """Check and apply trades in order, commit them as one transaction, then publish."""
        working = dict(self._stocks)
        outcomes = []
        changed: dict[str, Stock] = {}
        for trade in trades:
            check, after = apply_trade(working.get(trade.name), trade.type, trade.quantity)
            if check is TradeCheck.OK:
                assert after is not None
                working[trade.name] = changed[trade.name] = after
            outcomes.append(TradeOutcome(check, after.quantity if after else 0))
        if changed:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE stocks SET quantity = ?, volume = ? WHERE name = ?",
                    [(s.quantity, s.volume, s.name) for s in changed.values()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._stocks = working
        return outcomes

    def close(self) -> None:
        self._conn.close()
