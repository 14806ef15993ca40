"""A replica far behind installs the leader's committed log as a file (the client side of
FetchSnapshot), before it streams what the leader logged since (rejoin.py).

Each step is bounded and off the reactor: receive the file (if the disk has room; a leader
idle longer than the stream's timeout is given up on, as a rejoin stream is), inspect it (an
order log's format, stock table, tables and indexes, and nothing else, before any of its rows
is read), and hand it to the log, which copies its rows in on the writer thread while a worker
checks them (bazaar.core.snapshot), committing only if they pass. A failure anywhere leaves
the log as it was, and the stream that follows catches up entry by entry instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import grpc
from twisted.internet import threads
from twisted.logger import Logger

from bazaar.core.snapshot import CheckedSnapshot, MalformedSnapshot, SnapshotCheck
from bazaar.core.stock import Stock, table_id
from bazaar.order.catchup import IdleWatch
from bazaar.order.store import CHECK_WAIT, RECEIVED_PREFIX, schema_of
from bazaar.rpc.limits import MAX_SNAPSHOT_BYTES
from bazaar.storefile import check_format, check_table
from bazaar.v1 import order_pb2, order_pb2_grpc

log = Logger()

# Rows the check reads at a time. Each is a tuple of nine objects: ten thousand at a time were
# some 10 MiB of small objects, and Python's allocator kept its arenas half full of them after
# they were freed (a replica that had installed a snapshot held some 8 MiB more for good, with
# the C heap's thresholds fixed already: bazaar.plugins.runtime).
ROWS_PER_READ = 1_000


@dataclass(frozen=True)
class Received:
    path: Path
    last_index: int
    last_chain: bytes
    epoch: int


class NoRoom(Exception):
    """Not enough free disk for a snapshot: it is not fetched."""


# Free disk a snapshot needs beside it: the file received, the copy of its rows in the log,
# and the write-ahead log of that copy until it is checkpointed.
ROOM_FACTOR = 3


def fetch_snapshot(channel: Any, caller: str, directory: Path, deadline: float, idle_within: float) -> Received:
    """Blocking: the leader's snapshot, received whole into a new file in `directory`.
    Raises grpc.RpcError (a failed or abandoned stream), MalformedSnapshot (one that is not
    what it announced) or NoRoom; the file is removed then. Empty messages before the header
    say the leader is still making its copy."""
    stub = order_pb2_grpc.OrderServiceStub(channel)
    responses = stub.FetchSnapshot(order_pb2.FetchSnapshotRequest(caller=caller), timeout=deadline)
    idle = IdleWatch(responses.cancel, idle_within)
    path = directory / f"{RECEIVED_PREFIX}{uuid.uuid4().hex}.sqlite3"
    try:
        header = _header(responses, idle)
        free = shutil.disk_usage(directory).free
        if free < ROOM_FACTOR * header.size:
            raise NoRoom(f"a snapshot of {header.size:,} bytes needs {ROOM_FACTOR} times that free, "
                         f"and {directory} has {free:,}")
        digest = hashlib.sha256()
        size = 0
        with path.open("xb") as file:
            idle.watch()
            for response in responses:
                idle.unwatch()
                if response.digest:
                    if size != header.size or response.digest != digest.digest():
                        raise MalformedSnapshot("the snapshot file arrived damaged or incomplete")
                    return Received(path, header.last_index, header.last_chain, header.epoch)
                size += len(response.data)
                if size > header.size:
                    raise MalformedSnapshot("the snapshot file is larger than announced")
                digest.update(response.data)
                file.write(response.data)
                idle.watch()
        raise MalformedSnapshot("the snapshot stream ended before the file's digest")
    except BaseException:
        responses.cancel()
        path.unlink(missing_ok=True)
        raise
    finally:
        idle.unwatch()


_KEEPALIVE = order_pb2.FetchSnapshotResponse()


def _header(responses: Any, idle: IdleWatch) -> order_pb2.FetchSnapshotResponse:
    while True:
        idle.watch()
        header = next(responses, None)
        idle.unwatch()
        if header != _KEEPALIVE:
            break
    if header is None or header.data or header.digest or not 0 < header.size <= MAX_SNAPSHOT_BYTES:
        raise MalformedSnapshot("the snapshot's first message does not describe a file")
    return header


# How long SQLite may work on a received file for one inspection: whatever the file holds,
# no query on it runs longer (a quick check of a million entries takes about 0.2 s).
INSPECT_DEADLINE = 60.0


def _open(received: Received, deadline: float, stop: threading.Event | None = None) -> sqlite3.Connection:
    """A read-only connection to a received file, whose every query is abandoned once
    `deadline` seconds have passed (or `stop` is set)."""
    try:
        conn = sqlite3.connect(f"{received.path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise MalformedSnapshot(f"the snapshot cannot be opened: {e}") from None
    end = time.monotonic() + deadline
    conn.set_progress_handler(lambda: time.monotonic() > end or (stop is not None and stop.is_set()), 10_000)
    return conn


def inspect_snapshot(received: Received, stocks: Iterable[Stock]) -> None:
    """Blocking: whether the file is an order log at all: exactly the tables and indexes of
    one (read from SQLite's own catalogue first, so no view or trigger of the file ever runs),
    its format, its stock table, and SQLite's quick check. Raises MalformedSnapshot. Nothing
    reads the file's rows before this passed."""
    conn = _open(received, INSPECT_DEADLINE)
    try:
        if schema_of(conn) != schema_of(None):
            raise MalformedSnapshot("the snapshot's tables are not those of an order log")
        check_format(conn, received.path)
        check_table(conn, received.path, table_id(list(stocks)))
        if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise MalformedSnapshot("the snapshot file is damaged")
    except MalformedSnapshot:
        raise
    except Exception as e:  # whatever a file that is no order log makes SQLite or the checks raise
        raise MalformedSnapshot(f"the snapshot is not an order log: {e}") from None
    finally:
        conn.close()


def check_snapshot_rows(received: Received, stocks: Iterable[Stock], stop: threading.Event | None = None,
                        deadline: float = CHECK_WAIT) -> CheckedSnapshot:
    """Blocking: every row of a file inspect_snapshot passed (bazaar.core.snapshot); raises
    MalformedSnapshot, also when `stop` is set or `deadline` seconds pass first."""
    conn = _open(received, deadline, stop)
    try:
        check = SnapshotCheck(list(stocks), received.last_index, received.last_chain, received.epoch)
        rows = conn.execute(
            "SELECT idx, epoch, kind, number, name, type, quantity, key, chain FROM log ORDER BY idx"
        )
        while batch := rows.fetchmany(ROWS_PER_READ):
            check.feed(batch)
        return check.finish()
    except MalformedSnapshot:
        raise
    except sqlite3.OperationalError as e:
        if stop is not None and stop.is_set():
            raise MalformedSnapshot("the check was given up: the install is over") from None
        raise MalformedSnapshot(f"the snapshot could not be checked: {e}") from None
    except Exception as e:
        raise MalformedSnapshot(f"the snapshot is not an order log: {e}") from None
    finally:
        conn.close()


def check_snapshot_file(received: Received, stocks: Iterable[Stock]) -> CheckedSnapshot:
    """Blocking: the whole file checked, as an install checks it."""
    stocks = list(stocks)
    inspect_snapshot(received, stocks)
    return check_snapshot_rows(received, stocks)


async def install_snapshot(replica: Any, leader: str, deadline: float, idle_within: float) -> bool:
    """Fetch the leader's snapshot, check it and install it in place of our log; False (with
    the reason logged) when it was not installed, and the log is as it was."""
    directory = replica.store.path.parent
    channel = replica.channel(leader)
    stocks = list(replica.config.stocks)
    received: Received | None = None
    began = time.monotonic()
    try:
        received = await threads.deferToThread(
            fetch_snapshot, channel, replica.address, directory, deadline, idle_within)
        fetched = time.monotonic()
        await threads.deferToThread(inspect_snapshot, received, stocks)
        # The rows are checked while the log copies them in, on two threads: the copy is
        # SQLite's work, and waits for the check's verdict before it commits.
        file, stop = received, threading.Event()
        try:
            installed = await replica.log.install(
                file.path, file.last_index, file.epoch,
                lambda: threads.deferToThread(check_snapshot_rows, file, stocks, stop))
        finally:
            stop.set()  # a check still running is of no use any more
    except grpc.RpcError as e:
        log.warn("fetching a snapshot from {leader} failed: {code} {details}",
                 leader=leader, code=e.code().name, details=e.details())
        return False
    except MalformedSnapshot as e:
        log.error("a snapshot from {leader} was refused: {error}", leader=leader, error=str(e))
        return False
    except (NoRoom, OSError) as e:
        log.error("no snapshot could be fetched from {leader}: {error}", leader=leader, error=str(e))
        return False
    finally:
        if received is not None:
            received.path.unlink(missing_ok=True)
    _give_back_memory()
    if installed:
        log.info("installed a snapshot of entries 0 to {last} from {leader}: received in {fetch:.1f} s, "
                 "checked and written in {write:.1f} s", last=received.last_index, leader=leader,
                 fetch=fetched - began, write=time.monotonic() - fetched)
    return bool(installed)


def _give_back_memory() -> None:
    """Return the C heap's free memory to the system: the pages of free blocks in the middle of
    its heaps, which the fixed thresholds (bazaar.plugins.runtime) do not give back by themselves.
    Nothing to do where the C library is not glibc."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
