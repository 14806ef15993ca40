"""A replica's durable order log: append-only SQLite in WAL mode.

An append is one short transaction at the end of the primary-key index, so its cost does not
grow with history, and with synchronous=FULL every commit is fsync'd before it returns. A
kill -9 at any instant leaves the last committed state: SQLite's WAL never exposes a torn write.
Readers use their own connections, so lookups and rejoin streams never wait for a writer.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Iterator

from bazaar.core.orders import Order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    number   INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL,
    type     TEXT    NOT NULL CHECK (type IN ('buy', 'sell')),
    quantity INTEGER NOT NULL CHECK (quantity > 0)
)
"""


class StoreError(Exception):
    """The order log refused a write (a hole or a rewrite of history)."""


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class OrderStore:
    """The log file of one replica. Writes come from one thread at a time."""

    FILENAME = "orders.sqlite3"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._writer = _connect(self.path, readonly=False)
        self._writer.execute(_SCHEMA)
        self._readers = threading.local()
        self._last = self._query_last(self._writer)

    @property
    def last_number(self) -> int:
        """The highest committed order number, -1 for an empty log."""
        return self._last

    def append(self, orders: Iterable[Order]) -> int:
        """Commit consecutive orders numbered from last_number + 1; return the new last."""
        rows = [(o.number, o.name, o.type, o.quantity) for o in orders]
        if not rows:
            return self._last
        expected = range(self._last + 1, self._last + 1 + len(rows))
        if [r[0] for r in rows] != list(expected):
            raise StoreError(f"orders {rows[0][0]}.. do not follow {self._last} without a hole")
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._last = rows[-1][0]
        return self._last

    def get(self, number: int) -> Order | None:
        row = self._reader().execute(
            "SELECT number, name, type, quantity FROM orders WHERE number = ?", (number,)
        ).fetchone()
        return Order(*row) if row else None

    def after(self, number: int, limit: int) -> list[Order]:
        """Up to `limit` committed orders numbered above `number`, in order."""
        rows = self._reader().execute(
            "SELECT number, name, type, quantity FROM orders WHERE number > ? ORDER BY number LIMIT ?",
            (number, limit),
        ).fetchall()
        return [Order(*r) for r in rows]

    def close(self) -> None:
        self._writer.close()

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = _connect(self.path, readonly=False)
        return conn

    @staticmethod
    def _query_last(conn: sqlite3.Connection) -> int:
        (last,) = conn.execute("SELECT COALESCE(MAX(number), -1) FROM orders").fetchone()
        return last


def read_orders(directory: Path, batch: int = 10_000) -> Iterator[Order]:
    """Every committed order of the log in `directory`, by number, without opening it for writing.

    Works whether the replica runs or not; a missing log reads as empty.
    """
    path = directory / OrderStore.FILENAME
    if not path.exists():
        return
    conn = _connect(path, readonly=True)
    try:
        last = -1
        while True:
            rows = conn.execute(
                "SELECT number, name, type, quantity FROM orders WHERE number > ? ORDER BY number LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield Order(*row)
            last = rows[-1][0]
    finally:
        conn.close()
