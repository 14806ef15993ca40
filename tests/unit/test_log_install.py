"""A far-behind replica's log takes a leader's snapshot in place of its own (ReplicaLog.install)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, fail, succeed

from bazaar.core.book import StockBook
from bazaar.core.chain import Kind
from bazaar.core.snapshot import MalformedSnapshot
from bazaar.core.stock import table_id
from bazaar.order.snapshot import Received, check_snapshot_file, inspect_snapshot
from bazaar.order.store import OrderStore
from bazaar.v1 import order_pb2
from tests.unit.test_order_log import STOCKS, Replica, fired, leader_batch
from tests.unit.test_replica_core import log_of

TRADES = [("ford", "buy", 1), ("tesla", "buy", 2), ("ford", "sell", 3), ("tesla", "sell", 1)] * 5


@pytest.fixture
def leader(tmp_path: Path):
    """The leader's log: its leader entry of epoch 2 and twenty trades, as a store of its own."""
    store = OrderStore(tmp_path / "leader", table_id(STOCKS))
    entries = leader_batch(2, None, *TRADES)
    store.append(entries)
    return store, entries


def snapshot_of(leader, through: int) -> Received:
    """The leader's committed copy through `through`, as a replica receives it (the file stays
    in the leader's folder, which goes with the test's)."""
    store, _ = leader
    made = store.copy_committed(store.snapshot_path(), through)
    return Received(made.path, made.last_index, made.last_chain, 2)


def checked(received: Received) -> Deferred:
    try:
        return succeed(check_snapshot_file(received, STOCKS))
    except MalformedSnapshot as e:
        return fail(e)


def install(replica: Replica, received: Received, checks: list | None = None) -> Deferred:
    """The install as install_snapshot asks for it: the file inspected, its rows checked only
    if the log takes it (each check counted in `checks`)."""
    inspect_snapshot(received, STOCKS)

    def check() -> Deferred:
        if checks is not None:
            checks.append(received)
        return checked(received)

    return replica.log.install(received.path, received.last_index, received.epoch, check)


def test_a_snapshot_replaces_a_shorter_log_and_batches_wait_for_it(tmp_path: Path, leader) -> None:
    _, entries = leader
    replica = Replica(tmp_path / "follower")
    replica.log.receive(-1, bytes(16), [e.record() for e in entries[:4]], 20, 2, 3)
    replica.committer.flush()
    received = snapshot_of(leader, 15)
    installing = install(replica, received)
    assert replica.log.installing and replica.committer.pending == 1
    # A batch meanwhile is a gap: it is sent again once the log has its new end.
    answer = fired(replica.log.receive(15, entries[15].chain, [entries[16].record()], 20, 2)[0])
    assert answer[:2] == (order_pb2.PROPAGATE_STATUS_GAP, 3)
    replica.committer.flush()
    assert fired(installing) is True
    log = replica.log
    assert not log.installing
    assert (log.core.last_index, log.core.last_durable, log.committed) == (15, 15, 15)
    assert (log.core.epoch, log.core.floor) == (2, 2)
    book = StockBook(STOCKS)
    for e in entries[:16]:
        book.apply(e)
    assert log.core.book.stocks() == book.stocks()
    assert log.logged_under(entries[9].key) == entries[9]
    assert log.entry_at(12) == entries[12]
    # The leader's next batch follows on.
    written = log.receive(15, entries[15].chain, [e.record() for e in entries[16:]], 20, 2, 20)[0]
    replica.committer.flush()
    answer = fired(written)
    assert answer[0] == order_pb2.PROPAGATE_STATUS_OK and log.core.last_index == 20


def test_a_snapshot_is_not_installed_over_as_much_log_nor_while_leading_nor_from_an_older_epoch(
    tmp_path: Path, leader,
) -> None:
    _, entries = leader
    received = snapshot_of(leader, 10)
    checks: list = []
    full = Replica(tmp_path / "full")
    full.log.receive(-1, bytes(16), [e.record() for e in entries[:12]], 20, 2)
    full.committer.flush()
    assert fired(install(full, received, checks)) is False

    leading = Replica(tmp_path / "leading")
    leading.lead(epoch=1)
    assert fired(install(leading, received, checks)) is False

    newer = Replica(tmp_path / "newer")
    newer.log.receive(-1, bytes(16), [e.record() for e in leader_batch(3, None)], 0, 3)  # follows epoch 3
    newer.committer.flush()
    assert newer.log.core.floor == 3
    assert fired(install(newer, received, checks)) is False
    for r in (full, leading, newer):
        r.committer.end_of_turn()
    assert [r.committer.pending for r in (full, leading, newer)] == [0, 1, 0]  # leading: its own entry
    assert checks == [], "a snapshot the log does not take is not checked"


def test_a_snapshot_that_differs_from_an_entry_known_committed_is_not_installed(tmp_path: Path, leader) -> None:
    received = snapshot_of(leader, 10)
    replica = Replica(tmp_path / "follower")
    other = log_of((Kind.LEADER,), (Kind.TRADE, "ford", "buy", 2), epoch=1, tag="other")
    replica.log.receive(-1, bytes(16), [e.record() for e in other], 1, 1, 1)
    replica.committer.flush()
    assert fired(install(replica, received)) is False
    assert replica.committer.pending == 0 and replica.log.core.last_index == 1


def test_a_snapshot_that_fails_its_check_leaves_the_log_as_it_was(tmp_path: Path, leader) -> None:
    _, entries = leader
    received = snapshot_of(leader, 10)
    replica = Replica(tmp_path / "follower")
    replica.log.receive(-1, bytes(16), [e.record() for e in entries[:3]], 20, 2, 2)
    replica.committer.flush()
    lying = Received(received.path, 10, bytes(16), 2)  # announces another last chain value
    installing = install(replica, lying)
    replica.committer.flush()
    assert fired(installing) is False
    log = replica.log
    assert not log.installing and (log.core.last_index, log.core.last_durable) == (2, 2)
    assert replica.store.last_index == 2 and replica.write_failures == []


def test_a_log_that_moved_on_while_the_snapshot_came_is_replaced_from_where_it_is_now(tmp_path: Path, leader) -> None:
    _, entries = leader
    received = snapshot_of(leader, 15)
    replica = Replica(tmp_path / "follower")
    inspect_snapshot(received, STOCKS)
    replica.log.receive(-1, bytes(16), [e.record() for e in entries[:3]], 20, 2, 2)  # fed meanwhile
    replica.committer.flush()
    installing = replica.log.install(received.path, 15, 2, lambda: checked(received))
    assert replica.committer.submitted[-1][0].after == 2  # after our last entry, which it holds too
    replica.committer.flush()
    assert fired(installing) is True and replica.log.core.last_index == 15


def test_while_installing_a_leader_of_an_epoch_below_the_floor_is_told_it_is_stale(tmp_path: Path, leader) -> None:
    _, entries = leader
    received = snapshot_of(leader, 15)
    replica = Replica(tmp_path / "follower")
    replica.log.receive(-1, bytes(16), [e.record() for e in entries[:3]], 20, 2, 2)
    replica.committer.flush()
    installing = install(replica, received)
    assert replica.log.installing
    promised = replica.log.promise(3, candidate=1)  # a candidate of epoch 3, meanwhile
    written, deposed, stale = replica.log.receive(15, entries[15].chain, [entries[16].record()], 20, 2)
    assert stale and fired(written)[0] == order_pb2.PROPAGATE_STATUS_STALE_EPOCH
    replica.committer.flush()
    # The committed prefix is installed all the same, and the promise kept.
    assert fired(installing) is True and fired(promised)[0] is True
    assert (replica.log.core.last_index, replica.log.core.floor) == (15, 3)
