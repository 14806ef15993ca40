"""The catalog's durable stock table: SQLite in WAL mode, fsync'd on every commit.

Lookups read an in-memory snapshot that is replaced only after a commit, so a lookup never
sees a trade that a crash could still undo, and never touches the disk.
"""

from __future__ import annotations

import enum
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
-- The highest order-leader epoch seen: trades from older leaders are refused.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Trade:
    name: str
    type: str | None
    quantity: int
    trade_id: str = ""  # "" for a trade that is not deduplicated
    epoch: int = 0  # the sending leader's epoch; 0 is never refused


@dataclass(frozen=True)
class Fence:
    """From now on refuse trades from leaders older than `epoch`."""

    epoch: int


class Refusal(enum.Enum):
    KEY_REUSED = "the trade id was applied before to a different trade"
    STALE_EPOCH = "the sender's leadership epoch is older than one seen"


@dataclass(frozen=True)
class TradeOutcome:
    check: TradeCheck | Refusal
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
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        self.epoch = row[0] if row else 0

    def lookup(self, name: str) -> Stock | None:
        return self._stocks.get(name)

    def stocks(self) -> list[Stock]:
        return sorted(self._stocks.values(), key=lambda s: s.name)

    def apply(self, items: list[Trade | Fence]) -> list[TradeOutcome | None]:
        """Check and apply trades (and fences) in order, commit them as one transaction, then
        publish. A trade whose id was applied before answers as it did then and changes
        nothing; a trade from a leader older than the latest fence or trade is refused."""
        working = dict(self._stocks)
        outcomes: list[TradeOutcome | None] = []
        changed: dict[str, Stock] = {}
        recorded: dict[str, tuple] = {}
        epoch = self.epoch
        for trade in items:
            if isinstance(trade, Fence) or trade.epoch > epoch:
                epoch = max(epoch, trade.epoch)
                if isinstance(trade, Fence):
                    outcomes.append(None)
                    continue
            if 0 < trade.epoch < epoch:
                stock = working.get(trade.name)
                outcomes.append(TradeOutcome(Refusal.STALE_EPOCH, stock.quantity if stock else 0))
                continue
            earlier = self._applied(trade.trade_id, recorded)
            if earlier is not None:
                same = earlier[:3] == (trade.name, trade.type, trade.quantity)
                outcomes.append(TradeOutcome(TradeCheck.OK if same else Refusal.KEY_REUSED, earlier[3]))
                continue
            check, after = apply_trade(working.get(trade.name), trade.type, trade.quantity)
            if check is TradeCheck.OK:
                assert after is not None
                working[trade.name] = changed[trade.name] = after
                if trade.trade_id:
                    recorded[trade.trade_id] = (trade.name, trade.type, trade.quantity, after.quantity)
            outcomes.append(TradeOutcome(check, after.quantity if after else 0))
        if changed or epoch != self.epoch:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (epoch,))
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
            self.epoch = epoch
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

    def applied_last(self, count: int) -> list[tuple[int, str, str, str, int]]:
        """(seq, trade_id, name, type, quantity) of the newest `count` trades applied under an
        id, oldest first. Reads committed rows over its own connection, beside the writer."""
        conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT rowid, trade_id, name, type, quantity FROM applied ORDER BY rowid DESC LIMIT ?",
                (count,),
            ).fetchall()
        finally:
            conn.close()
        return rows[::-1]

    def close(self) -> None:
        self._conn.close()


def read_stocks(directory: Path) -> list[Stock]:
    """The committed stock table in `directory`, read-only (the catalog may be running)."""
    conn = sqlite3.connect(f"{(directory / CatalogStore.FILENAME).as_uri()}?mode=ro", uri=True)
    try:
        return [Stock(*row) for row in conn.execute("SELECT name, price, quantity, volume FROM stocks")]
    finally:
        conn.close()
