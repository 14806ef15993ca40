"""A replica's durable order log: SQLite in WAL mode, fsync'd on every commit.

An append is one short transaction at the end of the primary-key index, so its cost does not
grow with history. A kill -9 at any instant leaves the last committed state: SQLite's WAL never
exposes a torn write. Each row keeps its chain value (bazaar.core.chain) so that logs can be
compared without reading them whole. Readers use their own connections, so lookups and rejoin
streams never wait for the writer.

The store records the id of the stock table it was made from: trades were checked against
that table, so a replica given another one would check the next trades against numbers its
log does not imply. Such a store, or one an older version wrote, is refused at start.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from concurrent.futures import CancelledError, Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from bazaar.core.chain import GENESIS, Entry, Kind
from bazaar.core.orders import Order
from bazaar.storefile import FORMAT_VERSION, StoreError, check_format, check_table, meta

__all__ = ["OrderStore", "SnapshotFile", "schema_of", "snapshot_chain", "StoreError", "read_entries", "read_orders"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    idx      INTEGER PRIMARY KEY,
    epoch    INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('trade', 'refused', 'leader')),
    number   INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    type     TEXT    NOT NULL,
    quantity INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    chain    BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_by_key ON log (key) WHERE key != '';
CREATE UNIQUE INDEX IF NOT EXISTS log_by_number ON log (number) WHERE kind = 'trade';
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value NOT NULL
);
"""
_COLUMNS = "idx, epoch, kind, number, name, type, quantity, key, chain"
# Each query repeats its partial index's condition: without it SQLite cannot use the index
# and scans the whole log.
FIND_KEY = f"SELECT {_COLUMNS} FROM log WHERE key = ? AND key != ''"
KEYS_PER_QUERY = 500  # well below SQLite's limit of bound parameters
FIND_NUMBER = f"SELECT {_COLUMNS} FROM log WHERE number = ? AND kind = 'trade'"
TRADES_AFTER = f"SELECT {_COLUMNS} FROM log WHERE number > ? AND kind = 'trade' ORDER BY number LIMIT ?"


@dataclass(frozen=True)
class Append:
    entry: Entry


@dataclass(frozen=True)
class Truncate:
    """Drop every entry indexed above `after` (a follower discarding a dead leader's tail)."""

    after: int


@dataclass(frozen=True)
class SetEpoch:
    """Remember the highest leadership epoch this replica has taken part in; with `floor`, that
    it refuses leaders of older epochs from now on (not set for a candidate's promise to
    itself, which a restart withdraws: the candidacy died with the process)."""

    epoch: int
    floor: bool = True


@dataclass(frozen=True)
class SetCommitted:
    """Remember how far a leader said the log is committed (an index): a committed entry
    never changes, so this stays true, and lets a restarted replica answer lookups of it."""

    index: int


# How long a write waits for a snapshot's check to finish (it checks a million rows in seconds).
CHECK_WAIT = 300.0


@dataclass(frozen=True)
class Install:
    """Replace every entry after `after` with a snapshot's entries through `through` (the file
    at `path`), and take its leader's `epoch` as the floor: all at once once `passed` says the
    snapshot passed its check (bazaar.core.snapshot, running meanwhile on another thread: the
    copy costs SQLite's time, the check Python's), or, should it fail, or the rows not fit (a
    key the log holds already), not at all, the rest of the write going ahead. Its result is
    the last index after it either way."""

    path: Path
    after: int
    through: int
    epoch: int
    passed: Future[bool]


Operation = Append | Truncate | SetEpoch | SetCommitted | Install


BUSY_TIMEOUT_MS = 5000


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def _entry(row: tuple) -> Entry:
    return Entry(row[0], row[1], Kind(row[2]), row[3], row[4], row[5], row[6], row[7], bytes(row[8]))


def _row(e: Entry) -> tuple[Any, ...]:
    return (e.index, e.epoch, e.kind.value, e.number, e.name, e.type, e.quantity, e.key, e.chain)


# Files a snapshot is made in (the leader) or received into (a replica far behind): one a
# process left when it died is removed when the store opens again.
SNAPSHOT_PREFIX = "snapshot-"
RECEIVED_PREFIX = "received-"


@dataclass(frozen=True)
class SnapshotFile:
    """A copy of a log's entries 0 to `last_index`, whose last chain value is `last_chain`."""

    path: Path
    last_index: int
    last_chain: bytes
    size: int


class OrderStore:
    """The log file of one replica. Writes come from one thread at a time."""

    FILENAME = "orders.sqlite3"

    def __init__(self, directory: Path, table_id: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for prefix in (SNAPSHOT_PREFIX, RECEIVED_PREFIX):
            for leftover in directory.glob(f"{prefix}*.sqlite3*"):
                leftover.unlink(missing_ok=True)
        self.path = directory / self.FILENAME
        self._writer = _connect(self.path, readonly=False)
        try:
            self._open(table_id)
        except BaseException:
            self._writer.close()
            raise
        self._readers = threading.local()
        # Why the last Install was refused (None: it was not). Set on the writer thread, read
        # once its write's Deferred fired.
        self.install_refusal: str | None = None

    def _open(self, table_id: str) -> None:
        conn = self._writer
        check_format(conn, self.path)
        check_table(conn, self.path, table_id)
        conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('stocks', ?)", (table_id,))
        conn.execute("COMMIT")
        row = conn.execute(f"SELECT {_COLUMNS} FROM log ORDER BY idx DESC LIMIT 1").fetchone()
        self.last_entry: Entry | None = _entry(row) if row else None
        self.epoch: int = meta(conn, "epoch") or 0
        floor = meta(conn, "floor")
        self.floor: int = self.epoch if floor is None else floor
        committed = meta(conn, "committed")
        self.committed: int = -1 if committed is None else committed

    @property
    def last_index(self) -> int:
        """The highest index on disk, -1 for an empty log."""
        return self.last_entry.index if self.last_entry else -1

    def write(self, operations: Sequence[Operation]) -> list[int]:
        """Apply operations in order, as one transaction; the last index after each."""
        last, epoch, floor, committed = self.last_entry, self.epoch, self.floor, self.committed
        results = []
        conn = self._writer
        # Appends are inserted together with executemany: on a busy leader each call into
        # SQLite gives up the GIL and waits to get it back, so fewer calls commit sooner.
        rows: list[tuple[Any, ...]] = []

        def insert_rows() -> None:
            if rows:
                conn.executemany(f"INSERT INTO log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                rows.clear()

        # SQLite attaches only outside a transaction. A file it cannot attach is an install
        # refused, never a failed write.
        attached: dict[int, str] = {}
        for op in operations:
            if isinstance(op, Install):
                try:
                    conn.execute(f"ATTACH DATABASE ? AS snapshot{len(attached)}", (str(op.path),))
                    attached[id(op)] = f"snapshot{len(attached)}"
                except sqlite3.DatabaseError as e:
                    self.install_refusal = f"the file cannot be attached: {e}"
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in operations:
                if not isinstance(op, Append):
                    insert_rows()
                if isinstance(op, Install):
                    installed = self._install(attached[id(op)], op) if id(op) in attached else None
                    if installed is not None:
                        last = installed
                        epoch, floor, committed = max(epoch, op.epoch), max(floor, op.epoch), max(committed, op.through)
                        for key, value in (("epoch", epoch), ("floor", floor), ("committed", committed)):
                            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
                elif isinstance(op, Truncate):
                    conn.execute("DELETE FROM log WHERE idx > ?", (op.after,))
                    if last is not None and op.after < last.index:
                        row = conn.execute(f"SELECT {_COLUMNS} FROM log WHERE idx = ?", (op.after,)).fetchone()
                        last = _entry(row) if row else None
                elif isinstance(op, SetEpoch):
                    epoch = max(epoch, op.epoch)
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (epoch,))
                    if op.floor and op.epoch > floor:
                        floor = op.epoch
                        conn.execute("INSERT OR REPLACE INTO meta VALUES ('floor', ?)", (floor,))
                elif isinstance(op, SetCommitted):
                    if op.index > committed:
                        committed = op.index
                        conn.execute("INSERT OR REPLACE INTO meta VALUES ('committed', ?)", (committed,))
                else:
                    e = op.entry
                    expected = last.index + 1 if last else 0
                    if e.index != expected:
                        raise StoreError(f"entry {e.index} does not follow {expected - 1}")
                    rows.append(_row(e))
                    last = e
                results.append(last.index if last else -1)
            insert_rows()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                conn.execute("ROLLBACK")
            raise
        finally:
            for schema in attached.values():
                conn.execute(f"DETACH DATABASE {schema}")
        self.last_entry, self.epoch, self.floor, self.committed = last, epoch, floor, committed
        if attached:
            self._give_back_wal()
        return results

    def _give_back_wal(self) -> None:
        """An install wrote the whole log through the write-ahead log: give its space back,
        now if no reader holds an older snapshot (else SQLite reuses it as it goes)."""
        conn = self._writer
        try:
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def _install(self, schema: str, op: Install) -> Entry | None:
        """One Install, inside the write's transaction: the new last entry, or None when the
        rows did not fit (undone, so nothing of it stays)."""
        conn = self._writer
        conn.execute("SAVEPOINT install")
        try:
            conn.execute("DELETE FROM log WHERE idx > ?", (op.after,))
            conn.execute(f"INSERT INTO log ({_COLUMNS}) SELECT {_COLUMNS} FROM {schema}.log "
                         "WHERE idx > ? AND idx <= ? ORDER BY idx", (op.after, op.through))
            row = conn.execute(f"SELECT {_COLUMNS} FROM log ORDER BY idx DESC LIMIT 1").fetchone()
            if row is None or row[0] != op.through:
                raise sqlite3.IntegrityError(f"the snapshot does not hold entries {op.after + 1} to {op.through}")
            try:
                passed = op.passed.result(timeout=CHECK_WAIT)
            except (TimeoutError, CancelledError):
                raise sqlite3.IntegrityError(f"its check did not finish within {CHECK_WAIT:g} s") from None
            if not passed:
                raise sqlite3.IntegrityError("it did not pass its check")
        except sqlite3.DatabaseError as e:  # a key the log holds already, a file that is no log
            conn.execute("ROLLBACK TO install")
            conn.execute("RELEASE install")
            self.install_refusal = str(e)
            return None
        conn.execute("RELEASE install")
        self.install_refusal = None
        return _entry(row)

    @contextmanager
    def committed_copy(self, through: int) -> Iterator["SnapshotFile"]:
        """A copy of this log through entry `through` (copy_committed), removed afterwards."""
        path = self.snapshot_path()
        try:
            yield self.copy_committed(path, through)
        finally:
            path.unlink(missing_ok=True)

    def snapshot_path(self) -> Path:
        """A new name for a copy of this log, in the store's folder."""
        return self.path.parent / f"{SNAPSHOT_PREFIX}{uuid.uuid4().hex}.sqlite3"

    def copy_committed(self, path: Path, through: int) -> "SnapshotFile":
        """Blocking: a copy of this log through entry `through` (every entry through it on
        disk) as a file of its own at `path`. SQLite's backup reads one snapshot of the log
        while the writer goes on. Raises StoreError when it holds no entry `through`."""
        source = _connect(self.path, readonly=True)
        copy = sqlite3.connect(path, isolation_level=None)
        try:
            source.backup(copy)
            # A file of its own: no write-ahead log beside it, no entry past `through`.
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("DELETE FROM log WHERE idx > ?", (through,))
            row = copy.execute("SELECT chain FROM log WHERE idx = ?", (through,)).fetchone()
        finally:
            copy.close()
            source.close()
        if row is None:
            raise StoreError(f"entry {through} is not on disk")
        return SnapshotFile(path, through, bytes(row[0]), path.stat().st_size)

    def size(self) -> int:
        """Bytes the log takes on disk, its write-ahead log included."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def append(self, entries: Sequence[Entry]) -> int:
        self.write([Append(e) for e in entries])
        return self.last_index

    def stock_totals(self) -> list[tuple[str, str, int]]:
        """(name, type, total quantity) over every trade in the log: what it moved, per stock."""
        return self._reader().execute(
            "SELECT name, type, SUM(quantity) FROM log WHERE kind = 'trade' GROUP BY name, type"
        ).fetchall()

    def entry(self, index: int) -> Entry | None:
        row = self._reader().execute(f"SELECT {_COLUMNS} FROM log WHERE idx = ?", (index,)).fetchone()
        return _entry(row) if row else None

    def by_number(self, number: int) -> Entry | None:
        """The trade with transaction number `number`, if this log holds it."""
        row = self._reader().execute(FIND_NUMBER, (number,)).fetchone()
        return _entry(row) if row else None

    def find_key(self, key: str) -> Entry | None:
        """The entry placed under idempotency key `key`, if any."""
        if not key:
            return None
        row = self._reader().execute(FIND_KEY, (key,)).fetchone()
        return _entry(row) if row else None

    def find_keys(self, keys: list[str]) -> dict[str, Entry]:
        """The entries placed under any of `keys`, by key: one query for a whole batch."""
        found: dict[str, Entry] = {}
        wanted = [k for k in dict.fromkeys(keys) if k]
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[start:start + KEYS_PER_QUERY]
            # "key != ''" lets SQLite use the partial index on keys (else it reads every row).
            query = f"SELECT {_COLUMNS} FROM log WHERE key IN ({', '.join('?' * len(chunk))}) AND key != ''"
            for row in self._reader().execute(query, chunk):
                entry = _entry(row)
                found[entry.key] = entry
        return found

    def trades_after(self, number: int, limit: int) -> list[Entry]:
        """Up to `limit` trades numbered above `number`, in number order."""
        return [_entry(r) for r in self._reader().execute(TRADES_AFTER, (number, limit)).fetchall()]

    def chain(self, index: int) -> bytes | None:
        if index == -1:
            return GENESIS
        row = self._reader().execute("SELECT chain FROM log WHERE idx = ?", (index,)).fetchone()
        return bytes(row[0]) if row else None

    def after(self, index: int, limit: int) -> list[Entry]:
        """Up to `limit` entries indexed above `index`, in order."""
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM log WHERE idx > ? ORDER BY idx LIMIT ?", (index, limit)
        ).fetchall()
        return [_entry(r) for r in rows]

    @contextmanager
    def snapshot(self) -> Iterator["LogSnapshot"]:
        """The log as one read transaction sees it: a stream read from it in many batches is
        one log, even while the writer truncates and appends meanwhile."""
        conn = _connect(self.path, readonly=True)
        try:
            conn.execute("BEGIN")
            yield LogSnapshot(conn)
        finally:
            conn.close()

    def close(self) -> None:
        self._writer.close()

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = _connect(self.path, readonly=False)
        return conn


class LogSnapshot:
    """Reads of one log snapshot (OrderStore.snapshot)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def last_index(self) -> int:
        row = self._conn.execute("SELECT MAX(idx) FROM log").fetchone()
        return -1 if row[0] is None else row[0]

    def chain(self, index: int) -> bytes | None:
        if index == -1:
            return GENESIS
        row = self._conn.execute("SELECT chain FROM log WHERE idx = ?", (index,)).fetchone()
        return bytes(row[0]) if row else None

    def after(self, index: int, limit: int) -> list[Entry]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM log WHERE idx > ? ORDER BY idx LIMIT ?", (index, limit)
        ).fetchall()
        return [_entry(r) for r in rows]


def schema_of(conn: sqlite3.Connection | None) -> list[tuple[str, str, str]]:
    """The tables and indexes of a log file, as SQLite's catalogue holds them, white space
    aside (None: those a new log gets)."""
    if conn is None:
        new = sqlite3.connect(":memory:")
        try:
            new.executescript(_SCHEMA)
            return schema_of(new)
        finally:
            new.close()
    rows = conn.execute("SELECT type, name, COALESCE(sql, '') FROM sqlite_master").fetchall()
    return sorted((str(kind), str(name), " ".join(str(sql).split())) for kind, name, sql in rows)


def snapshot_chain(path: Path, index: int) -> bytes | None:
    """The chain value of entry `index` in a snapshot file (GENESIS for -1; None: no such entry)."""
    if index == -1:
        return GENESIS
    conn = _connect(path, readonly=True)
    try:
        row = conn.execute("SELECT chain FROM log WHERE idx = ?", (index,)).fetchone()
    finally:
        conn.close()
    return row[0] if row is not None and type(row[0]) is bytes else None


def read_entries(directory: Path, batch: int = 10_000) -> Iterator[Entry]:
    """Every entry of the log in `directory`, by index, without opening it for writing. Works
    whether the replica runs or not; a missing log reads as empty."""
    path = directory / OrderStore.FILENAME
    if not path.exists():
        return
    conn = _connect(path, readonly=True)
    try:
        check_format(conn, path)
        last = -1
        while True:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM log WHERE idx > ? ORDER BY idx LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            last = rows[-1][0]
    finally:
        conn.close()


def read_orders(directory: Path, batch: int = 10_000) -> Iterator[Order]:
    """Every executed trade of the log in `directory`, by transaction number (see read_entries)."""
    return (entry.order for entry in read_entries(directory, batch) if entry.is_trade)
