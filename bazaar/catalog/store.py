"""The catalog's stock table: SQLite in WAL mode, a learner's copy of what the log decided.

The catalog learns the committed order log (bazaar.core.learner): it records how far it has
applied (`applied`, a transaction number) in the same transaction as the stock the trades
moved, so a crash never leaves a trade applied but not counted, or counted but not applied.
Lookups read an in-memory snapshot that is replaced only after a commit, so a lookup never
sees a trade that a crash could still undo, and never touches the disk.

The store records the id of the stock table it was made from; started with another table it
refuses to open, since the log's trades were checked against the first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from bazaar.core.learner import CommittedTrade, Learned, Progress, learn
from bazaar.core.stock import Stock, table_id
from bazaar.storefile import FORMAT_VERSION, StoreError, check_format, check_table, meta

__all__ = ["CatalogStore", "StoreError", "read_applied", "read_stocks"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stocks (
    name     TEXT    PRIMARY KEY,
    price    REAL    NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    volume   INTEGER NOT NULL CHECK (volume >= 0)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value NOT NULL
)
"""


@dataclass(frozen=True)
class Snapshot:
    """The committed table, and the number it has applied trades through."""

    stocks: dict[str, Stock]
    applied: int


@dataclass(frozen=True)
class BatchResult:
    applied: int
    progress: Progress


class CatalogStore:
    FILENAME = "catalog.sqlite3"

    def __init__(self, directory: Path, initial: Iterable[Stock]) -> None:
        initial = tuple(initial)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._open(initial)
        except BaseException:
            self._conn.close()
            raise

    def _open(self, initial: tuple[Stock, ...]) -> None:
        conn = self._conn
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL, not FULL: a commit needs no fsync of its own. A crash may lose the latest
        # applied batches, never half of one (WAL), and the catalog learns them again from the
        # log; the order log, which nothing can rebuild, is the store that fsyncs every commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        wanted = table_id(initial)
        check_format(conn, self.path)
        check_table(conn, self.path, wanted)
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        if meta(conn, "stocks") is None:
            conn.executemany("INSERT INTO stocks VALUES (?, ?, ?, ?)",
                             [(s.name, s.price, s.quantity, s.volume) for s in initial])
            conn.execute("INSERT INTO meta VALUES ('stocks', ?)", (wanted,))
            conn.execute("INSERT INTO meta VALUES ('applied', -1)")
        conn.execute("COMMIT")
        stocks = {row[0]: Stock(*row) for row in conn.execute("SELECT name, price, quantity, volume FROM stocks")}
        self.snapshot = Snapshot(stocks, meta(conn, "applied"))

    @property
    def applied(self) -> int:
        return self.snapshot.applied

    def lookup(self, name: str) -> Stock | None:
        return self.snapshot.stocks.get(name)

    def stocks(self) -> list[Stock]:
        return sorted(self.snapshot.stocks.values(), key=lambda s: s.name)

    def apply(self, batches: Sequence[Sequence[CommittedTrade]]) -> list[BatchResult]:
        """Learn batches of committed trades in order (bazaar.core.learner), commit what they
        changed as one transaction with the new applied number, then publish."""
        stocks, applied = dict(self.snapshot.stocks), self.snapshot.applied
        results = []
        changed: dict[str, Stock] = {}
        for batch in batches:
            learned: Learned = learn(stocks, applied, batch)
            stocks.update(learned.changed)
            changed.update(learned.changed)
            applied = learned.applied
            results.append(BatchResult(applied, learned.progress))
        if applied != self.snapshot.applied:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE stocks SET quantity = ?, volume = ? WHERE name = ?",
                    [(s.quantity, s.volume, s.name) for s in changed.values()],
                )
                conn.execute("UPDATE meta SET value = ? WHERE key = 'applied'", (applied,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                    conn.execute("ROLLBACK")
                raise
            self.snapshot = Snapshot(stocks, applied)
        return results

    def close(self) -> None:
        self._conn.close()


def _read_only(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{(directory / CatalogStore.FILENAME).absolute().as_uri()}?mode=ro", uri=True)


def read_stocks(directory: Path) -> list[Stock]:
    """The committed stock table in `directory`, read-only (the catalog may be running)."""
    conn = _read_only(directory)
    try:
        return [Stock(*row) for row in conn.execute("SELECT name, price, quantity, volume FROM stocks")]
    finally:
        conn.close()


def read_applied(directory: Path) -> int:
    """How far the catalog in `directory` has applied the order log (-1: nothing yet)."""
    conn = _read_only(directory)
    try:
        value = meta(conn, "applied")
        return -1 if value is None else int(value)
    finally:
        conn.close()
