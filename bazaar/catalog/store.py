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
);
-- Every trade applied under an id, committed with the stock it moved: a repeat of the id
-- (a new leader redoing a trade its dead predecessor had started) changes nothing.
CREATE TABLE IF NOT EXISTS applied (
    trade_id TEXT    PRIMARY KEY,
    name     TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    quantity INTEGER NOT NULL,
    after    INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Trade:
    name: str
    type: str | None
    quantity: int
    trade_id: str = ""  # "" for a trade that is not deduplicated


@dataclass(frozen=True)
class TradeOutcome:
    check: TradeCheck | None  # None: the trade id was applied before to a different trade
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
        for statement in _SCHEMA.split(";"):
            self._conn.execute(statement)
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
        """Check and apply trades in order, commit them as one transaction, then publish.

        A trade whose id was applied before answers as it did then and changes nothing."""
        working = dict(self._stocks)
        outcomes = []
        changed: dict[str, Stock] = {}
        recorded: dict[str, tuple] = {}
        for trade in trades:
            earlier = self._applied(trade.trade_id, recorded)
            if earlier is not None:
                same = earlier[:3] == (trade.name, trade.type, trade.quantity)
                outcomes.append(TradeOutcome(TradeCheck.OK if same else None, earlier[3]))
                continue
            check, after = apply_trade(working.get(trade.name), trade.type, trade.quantity)
            if check is TradeCheck.OK:
                assert after is not None
                working[trade.name] = changed[trade.name] = after
                if trade.trade_id:
                    recorded[trade.trade_id] = (trade.name, trade.type, trade.quantity, after.quantity)
            outcomes.append(TradeOutcome(check, after.quantity if after else 0))
        if changed:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE stocks SET quantity = ?, volume = ? WHERE name = ?",
                    [(s.quantity, s.volume, s.name) for s in changed.values()],
                )
                conn.executemany(
                    "INSERT INTO applied VALUES (?, ?, ?, ?, ?)",
                    [(tid, *values) for tid, values in recorded.items()],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._stocks = working
        return outcomes

    def _applied(self, trade_id: str, recorded: dict[str, tuple]) -> tuple | None:
        """(name, type, quantity, quantity after) of the trade applied under `trade_id`."""
        if not trade_id:
            return None
        if trade_id in recorded:
            return recorded[trade_id]
        return self._conn.execute(
            "SELECT name, type, quantity, after FROM applied WHERE trade_id = ?", (trade_id,)
        ).fetchone()

    def close(self) -> None:
        self._conn.close()
