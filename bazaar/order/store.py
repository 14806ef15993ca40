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
from typing import Any, Iterator, Sequence

from bazaar.core.chain import GENESIS, Entry
from bazaar.core.orders import Order

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    number   INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL,
    type     TEXT    NOT NULL CHECK (type IN ('buy', 'sell')),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    epoch    INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    chain    BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_key ON orders (key) WHERE key != '';
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
_COLUMNS = "number, name, type, quantity, epoch, key, chain"
# `key != ''` repeats the partial index's condition: without it SQLite cannot use the index
# and scans the whole log, for every keyed trade.
FIND_KEY = f"SELECT {_COLUMNS} FROM orders WHERE key = ? AND key != ''"


class StoreError(Exception):
    """The order log refused a write that would leave a hole."""


@dataclass(frozen=True)
class Append:
    entry: Entry


@dataclass(frozen=True)
class Truncate:
    """Drop every order numbered above `after` (a follower discarding a dead leader's tail)."""

    after: int


@dataclass(frozen=True)
class SetEpoch:
    """Remember the highest leadership epoch this replica has taken part in."""

    epoch: int


Operation = Append | Truncate | SetEpoch


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
    return Entry(Order(row[0], row[1], row[2], row[3]), row[4], row[5], bytes(row[6]))


class OrderStore:
    """The log file of one replica. Writes come from one thread at a time."""

    FILENAME = "orders.sqlite3"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._writer = _connect(self.path, readonly=False)
        self._writer.executescript(_SCHEMA)
        self._readers = threading.local()
        row = self._writer.execute(
            f"SELECT {_COLUMNS} FROM orders ORDER BY number DESC LIMIT 1"
        ).fetchone()
        self.last_entry: Entry | None = _entry(row) if row else None
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        self.epoch: int = row[0] if row else 0

    @property
    def last_number(self) -> int:
        """The highest committed order number, -1 for an empty log."""
        return self.last_entry.number if self.last_entry else -1

    @property
    def last_chain(self) -> bytes:
        return self.last_entry.chain if self.last_entry else GENESIS

    def write(self, operations: Sequence[Operation]) -> list[int]:
        """Apply operations in order, as one transaction; the last order number after each."""
        last, epoch = self.last_entry, self.epoch
        results = []
        conn = self._writer
        # Appends are inserted together with executemany: on a busy leader each call into
        # SQLite gives up the GIL and waits to get it back, so fewer calls commit sooner.
        rows: list[tuple[Any, ...]] = []

        def insert_rows() -> None:
            if rows:
                conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                rows.clear()

        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in operations:
                if not isinstance(op, Append):
                    insert_rows()
                if isinstance(op, Truncate):
                    conn.execute("DELETE FROM orders WHERE number > ?", (op.after,))
                    if last is not None and op.after < last.number:
                        row = conn.execute(f"SELECT {_COLUMNS} FROM orders WHERE number = ?", (op.after,)).fetchone()
                        last = _entry(row) if row else None
                elif isinstance(op, SetEpoch):
                    epoch = max(epoch, op.epoch)
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (epoch,))
                else:
                    e = op.entry
                    expected = last.number + 1 if last else 0
                    if e.number != expected:
                        raise StoreError(f"order {e.number} does not follow {expected - 1}")
                    o = e.order
                    rows.append((o.number, o.name, o.type, o.quantity, e.epoch, e.key, e.chain))
                    last = e
                results.append(last.number if last else -1)
            insert_rows()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.last_entry, self.epoch = last, epoch
        return results

    def append(self, entries: Sequence[Entry]) -> int:
        self.write([Append(e) for e in entries])
        return self.last_number

    def entry(self, number: int) -> Entry | None:
        row = self._reader().execute(f"SELECT {_COLUMNS} FROM orders WHERE number = ?", (number,)).fetchone()
        return _entry(row) if row else None

    def find_key(self, key: str) -> Entry | None:
        """The committed entry placed under idempotency key `key`, if any."""
        if not key:
            return None
        row = self._reader().execute(FIND_KEY, (key,)).fetchone()
        return _entry(row) if row else None

    def recent_keys(self, count: int) -> set[str]:
        """The idempotency keys of the last `count` committed entries."""
        rows = self._reader().execute(
            "SELECT key FROM orders ORDER BY number DESC LIMIT ?", (count,)
        ).fetchall()
        return {row[0] for row in rows if row[0]}

    def get(self, number: int) -> Order | None:
        entry = self.entry(number)
        return entry.order if entry else None

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


def read_entries(directory: Path, batch: int = 10_000) -> Iterator[Entry]:
    """Every committed entry of the log in `directory`, by number, without opening it for
    writing. Works whether the replica runs or not; a missing log reads as empty."""
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
                yield _entry(row)
            last = rows[-1][0]
    finally:
        conn.close()


def read_orders(directory: Path, batch: int = 10_000) -> Iterator[Order]:
    """Every committed order of the log in `directory`, by number (see read_entries)."""
    return (entry.order for entry in read_entries(directory, batch))
