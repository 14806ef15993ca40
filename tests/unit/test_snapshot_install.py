"""install_snapshot end to end on the reactor, with the real writer thread: a leader's file that
is no order log, or one no leader writes, is refused with the log as it was, the writer
working, no traceback and no file left."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred

from bazaar.core.book import StockBook
from bazaar.core.stock import table_id
from bazaar.order.log import ReplicaLog
from bazaar.order.snapshot import install_snapshot
from bazaar.order.store import OrderStore, read_entries
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.v1 import order_pb2
from tests.unit.test_log_install import TRADES
from tests.unit.test_order_log import STOCKS, leader_batch
from tests.unit.test_snapshot_fetch import Channel

ENTRIES = leader_batch(2, None, *TRADES)


def leader_file(tmp_path: Path, sql: str | None = None, raw: bytes | None = None) -> tuple[bytes, bytes]:
    """A leader's committed copy of entries 0-15, then changed by `sql` (or replaced by `raw`)."""
    store = OrderStore(tmp_path / "leader", table_id(STOCKS))
    store.append(ENTRIES)
    with store.committed_copy(15) as copy:
        path = tmp_path / "sent.sqlite3"
        shutil.copy(copy.path, path)
        chain = copy.last_chain
    store.close()
    if sql:
        conn = sqlite3.connect(path)
        conn.executescript(sql)
        conn.commit()
        conn.close()
    return (raw if raw is not None else path.read_bytes()), chain


def stream(data: bytes, chain: bytes) -> list[order_pb2.FetchSnapshotResponse]:
    return [
        order_pb2.FetchSnapshotResponse(),  # the leader still copying
        order_pb2.FetchSnapshotResponse(last_index=15, last_chain=chain, epoch=2, size=len(data)),
        order_pb2.FetchSnapshotResponse(data=data),
        order_pb2.FetchSnapshotResponse(digest=hashlib.sha256(data).digest()),
    ]


class Follower:
    def __init__(self, directory: Path, messages: list, held: int) -> None:
        self.store = OrderStore(directory, table_id(STOCKS))
        self.failures: list[Any] = []
        self.committer = GroupCommitter(reactor, self.store.write, "test", broken=self.failures.append)
        self.committer.startService()
        self.log = ReplicaLog(reactor, self.store, self.committer, StockBook(STOCKS), lambda: None,
                              self.failures.append)
        self.held = held
        self.replica = SimpleNamespace(store=self.store, log=self.log, address="127.0.0.1:9",
                                       config=SimpleNamespace(stocks=STOCKS), channel=lambda _: Channel(messages))

    async def hold(self) -> None:
        if self.held:
            await self.log.receive(-1, bytes(16), [e.record() for e in ENTRIES[:self.held]], 20, 2, self.held - 1)[0]


def view_sql() -> str:
    return """DROP TABLE log;
        CREATE VIEW log AS WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r)
        SELECT i AS idx, 1 AS epoch, 'leader' AS kind, -1 AS number, '' AS name, '' AS type,
               0 AS quantity, '' AS key, zeroblob(16) AS chain FROM r;"""


CASES = {
    "not a database": dict(raw=b"not a database " * 1000),
    "an endless view for its log": dict(sql=view_sql()),
    "an endless view for its meta": dict(sql="""DROP TABLE meta;
        CREATE VIEW meta AS WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r)
        SELECT printf('k%d', i) AS key, 2 AS value FROM r;"""),
    "a trigger": dict(sql="CREATE TRIGGER t AFTER INSERT ON meta BEGIN SELECT 1; END;"),
    "a chain value as text": dict(sql="UPDATE log SET chain = 'x' WHERE idx = 3"),
    "a key as a blob": dict(sql="UPDATE log SET key = x'6b' WHERE idx = 2"),
    "a huge integer chain": dict(sql="UPDATE log SET chain = 9000000000000000000 WHERE idx = 0"),
    "a changed quantity": dict(sql="UPDATE log SET quantity = 2 WHERE idx = 1"),
}


@pytest.mark.parametrize("held", [0, 4])
@pytest.mark.parametrize("case", list(CASES))
@pytest_twisted.ensureDeferred
async def test_a_file_no_leader_writes_is_refused_and_changes_nothing(tmp_path: Path, case: str, held: int) -> None:
    data, chain = leader_file(tmp_path, **CASES[case])
    follower = Follower(tmp_path / "follower", stream(data, chain), held)
    try:
        await follower.hold()
        assert await install_snapshot(follower.replica, "leader", 5.0, 1.0) is False
        assert not follower.log.installing and follower.failures == []
        assert follower.log.core.last_index == held - 1
        assert list(read_entries(tmp_path / "follower")) == ENTRIES[:held]
        assert not [p.name for p in (tmp_path / "follower").iterdir() if p.name.startswith("received-")]
        # The writer still works: the leader's batch is taken after the refusal.
        await follower.log.receive(held - 1, ENTRIES[held - 1].chain if held else bytes(16),
                                   [ENTRIES[held].record()], 20, 2)[0]
        assert follower.store.last_index == held
    finally:
        await maybeDeferred(follower.committer.stopService)


@pytest_twisted.ensureDeferred
async def test_a_leaders_file_is_installed_and_the_log_follows_on(tmp_path: Path) -> None:
    data, chain = leader_file(tmp_path)
    follower = Follower(tmp_path / "follower", stream(data, chain), 4)
    try:
        await follower.hold()
        assert await install_snapshot(follower.replica, "leader", 5.0, 1.0) is True
        assert list(read_entries(tmp_path / "follower")) == ENTRIES[:16]
        assert not [p.name for p in (tmp_path / "follower").iterdir() if p.name.startswith("received-")]
        assert Path(f"{follower.store.path}-wal").stat().st_size == 0  # its space given back
    finally:
        await maybeDeferred(follower.committer.stopService)
