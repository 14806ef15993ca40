"""A replica far behind installs the leader's committed log as a file (the client side of
FetchSnapshot), before it streams what the leader logged since (rejoin.py).

Three steps, each bounded: receive the file on a worker thread (the leader's idle stream is
given up on, as a rejoin stream is), check it on a worker thread (its format, its stock table,
every row: bazaar.core.snapshot), and hand it to the log, which copies its rows in with one
transaction on the writer thread (store.py). A failure anywhere leaves the log as it was, and
the stream that follows catches up entry by entry instead.
"""

from __future__ import annotations

import hashlib
import sqlite3
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
from bazaar.order.store import RECEIVED_PREFIX, StoreError, schema_of
from bazaar.rpc.limits import MAX_SNAPSHOT_BYTES
from bazaar.storefile import check_format, check_table
from bazaar.v1 import order_pb2, order_pb2_grpc

log = Logger()

ROWS_PER_READ = 10_000


@dataclass(frozen=True)
class Received:
    path: Path
    last_index: int
    last_chain: bytes
    epoch: int


def fetch_snapshot(channel: Any, caller: str, directory: Path, deadline: float, idle_within: float) -> Received:
    """Blocking: the leader's snapshot, received whole into a new file in `directory`.
    Raises grpc.RpcError (a failed or abandoned stream) or MalformedSnapshot (one that is
    not what it announced); the file is removed then."""
    stub = order_pb2_grpc.OrderServiceStub(channel)
    responses = stub.FetchSnapshot(order_pb2.FetchSnapshotRequest(caller=caller), timeout=deadline)
    idle = IdleWatch(responses.cancel, idle_within)
    path = directory / f"{RECEIVED_PREFIX}{uuid.uuid4().hex}.sqlite3"
    try:
        idle.watch()
        header = next(responses, None)
        idle.unwatch()
        if header is None or header.data or header.digest or not 0 < header.size <= MAX_SNAPSHOT_BYTES:
            raise MalformedSnapshot("the snapshot's first message does not describe a file")
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
        idle.unwatch()
        responses.cancel()
        path.unlink(missing_ok=True)
        raise
    finally:
        idle.unwatch()


def check_snapshot_file(received: Received, stocks: Iterable[Stock]) -> CheckedSnapshot:
    """Blocking: the file checked whole (bazaar.core.snapshot); raises MalformedSnapshot."""
    stocks = list(stocks)
    try:
        conn = sqlite3.connect(f"{received.path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise MalformedSnapshot(f"the snapshot cannot be opened: {e}") from None
    try:
        check_format(conn, received.path)
        check_table(conn, received.path, table_id(stocks))
        if schema_of(conn) != schema_of(None):
            raise MalformedSnapshot("the snapshot's tables are not those of an order log")
        if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
            raise MalformedSnapshot("the snapshot file is damaged")
        check = SnapshotCheck(stocks, received.last_index, received.last_chain, received.epoch)
        rows = conn.execute(
            "SELECT idx, epoch, kind, number, name, type, quantity, key, chain FROM log ORDER BY idx"
        )
        while batch := rows.fetchmany(ROWS_PER_READ):
            check.feed(batch)
        return check.finish()
    except (sqlite3.DatabaseError, StoreError) as e:
        raise MalformedSnapshot(f"the snapshot is not an order log: {e}") from None
    finally:
        conn.close()


async def install_snapshot(replica: Any, leader: str, deadline: float, idle_within: float) -> bool:
    """Fetch the leader's snapshot, check it and install it in place of our log; False (with
    the reason logged) when it was not installed, and the log is as it was."""
    directory = replica.store.path.parent
    channel = replica.channel(leader)
    received: Received | None = None
    began = time.monotonic()
    try:
        received = await threads.deferToThread(
            fetch_snapshot, channel, replica.address, directory, deadline, idle_within)
        fetched = time.monotonic()
        # Checked while the log copies its rows in, on two threads: the copy is SQLite's work
        # and waits for the check's verdict before it commits.
        checking = threads.deferToThread(check_snapshot_file, received, replica.config.stocks)
        installing = replica.log.install(received.path, received.last_index, received.epoch, checking)
        try:
            await checking
        except MalformedSnapshot as e:
            log.error("a snapshot from {leader} was refused: {error}", leader=leader, error=str(e))
        installed = await installing
    except grpc.RpcError as e:
        log.warn("fetching a snapshot from {leader} failed: {code} {details}",
                 leader=leader, code=e.code().name, details=e.details())
        return False
    except MalformedSnapshot as e:
        log.error("a snapshot from {leader} was refused: {error}", leader=leader, error=str(e))
        return False
    finally:
        if received is not None:
            received.path.unlink(missing_ok=True)
    if installed:
        log.info("installed a snapshot of entries 0 to {last} from {leader}: received in {fetch:.1f} s, "
                 "checked and written in {write:.1f} s", last=received.last_index, leader=leader,
                 fetch=fetched - began, write=time.monotonic() - fetched)
    return bool(installed)
