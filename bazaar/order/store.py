"""A replica's durable order log: SQLite in WAL mode, fsync'd on every commit.

An append is one short transaction at the end of the primary-key index, so its cost does not
grow with history. A kill -9 at any instant leaves the last committed state: SQLite's WAL never
exposes a torn write. Each row keeps its chain value (bazaar.core.chain) so that logs can be
compared without reading them whole. Readers use their own connections, so lookups and rejoin
streams never wait for the writer.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from bazaar.core.chain import GENESIS, Entry
from bazaar.core.orders import Order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    number   INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL,
    type     TEXT    NOT NULL CHECK (type IN ('buy', 'sell')),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    chain    BLOB    NOT NULL
)
"""
_COLUMNS = "number, name, type, quantity, chain"


class StoreError(Exception):
    """The order log refused a write that would leave a hole."""


@dataclass(frozen=True)
class Append:
    entry: Entry


@dataclass(frozen=True)
class Truncate:
    """Drop every order numbered above `after` (a follower discarding a dead leader's tail)."""

    after: int


Operation = Append | Truncate


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _entry(row: tuple) -> Entry:
    return Entry(Order(row[0], row[1], row[2], row[3]), bytes(row[4]))


class OrderStore:
    """The log file of one replica. Writes come from one thread at a time."""

    FILENAME = "orders.sqlite3"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._writer = _connect(self.path, readonly=False)
        self._writer.execute(_SCHEMA)
        self._readers = threading.local()
        row = self._writer.execute(
            f"SELECT {_COLUMNS} FROM orders ORDER BY number DESC LIMIT 1"
        ).fetchone()
        self._last, self._last_chain = (row[0], bytes(row[4])) if row else (-1, GENESIS)

    @property
    def last_number(self) -> int:
        """The highest committed order number, -1 for an empty log."""
        return self._last

    @property
    def last_chain(self) -> bytes:
        return self._last_chain

    def write(self, operations: Sequence[Operation]) -> list[int]:
        """Apply appends and truncations in order, as one transaction; the last number after each."""
        last, chain = self._last, self._last_chain
        results = []
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in operations:
                if isinstance(op, Truncate):
                    conn.execute("DELETE FROM orders WHERE number > ?", (op.after,))
                    if op.after < last:
                        last = op.after
                        row = conn.execute("SELECT chain FROM orders WHERE number = ?", (last,)).fetchone()
                        chain = bytes(row[0]) if row else GENESIS
                else:
                    o = op.entry.order
                    if o.number != last + 1:
                        raise StoreError(f"order {o.number} does not follow {last}")
                    conn.execute(
                        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                        (o.number, o.name, o.type, o.quantity, op.entry.chain),
                    )
                    last, chain = o.number, op.entry.chain
                results.append(last)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._last, self._last_chain = last, chain
        return results

    def append(self, entries: Sequence[Entry]) -> int:
        self.write([Append(e) for e in entries])
        return self._last

    def get(self, number: int) -> Order | None:
        row = self._reader().execute(f"SELECT {_COLUMNS} FROM orders WHERE number = ?", (number,)).fetchone()
        return _entry(row).order if row else None

    def chain(self, number: int) -> bytes | None:
        if number == -1:
            return GENESIS
        row = self._reader().execute("SELECT chain FROM orders WHERE number = ?", (number,)).fetchone()
        return bytes(row[0]) if row else None

    def after(self, number: int, limit: int) -> list[Entry]:
        """Up to `limit` committed entries numbered above `number`, in order."""
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM orders WHERE number > ? ORDER BY number LIMIT ?", (number, limit)
        ).fetchall()
        return [_entry(r) for r in rows]

    def close(self) -> None:
        self._writer.close()

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = _connect(self.path, readonly=False)
        return conn


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
                f"SELECT {_COLUMNS} FROM orders WHERE number > ? ORDER BY number LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _entry(row).order
            last = rows[-1][0]
    finally:
        conn.close()
