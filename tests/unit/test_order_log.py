"""A replica's log as the reactor sees it (ReplicaLog): the store, the entries on their way to
disk, and the core. The writer is mostly a stand-in that writes to the real store when told;
the last tests use the real group committer."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import Clock

from bazaar.core.book import StockBook
from bazaar.core.chain import Entry, Kind
from bazaar.core.stock import Stock, table_id
from bazaar.order.log import COMMIT_PERSIST_DELAY, ReplicaLog
from bazaar.order.store import Append, OrderStore, SetCommitted, SetEpoch, Truncate
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.v1 import order_pb2
from tests.unit.polling import reactor_until
from tests.unit.test_replica_core import log_of

STOCKS = (Stock("tesla", 183.26, 10, 0), Stock("ford", 11.93, 5, 0))


class ManualCommitter:
    """Stands in for the GroupCommitter: what is submitted reaches the store only on `flush`,
    in order, one transaction per flush; each submit_all's Deferred fires with its last
    operation's result, and a barrier once everything submitted before it is written."""

    def __init__(self, store: OrderStore) -> None:
        self.store = store
        self.submitted: list[list[Any]] = []  # every submit_all's operations, in order
        self._queued: list[tuple[list[Any], Deferred]] = []
        self._barriers: list[tuple[int, Deferred]] = []
        self._written = 0
        self.gather: Any = None  # as GroupCommitter.gather: asked first on each flush

    def wake(self) -> None:
        pass

    def submit_all(self, operations: list[Any]) -> Deferred:
        d: Deferred = Deferred()
        self.submitted.append(list(operations))
        self._queued.append((list(operations), d))
        return d

    def barrier(self) -> Deferred:
        if not self._queued:
            return succeed(None)
        d: Deferred = Deferred()
        self._barriers.append((len(self.submitted), d))
        return d

    def end_of_turn(self) -> None:
        """As the real committer when it takes a batch: `gather` hands over what waits."""
        if self.gather is not None:
            self.gather()

    @property
    def pending(self) -> int:
        return len(self._queued)

    def flush(self, count: int | None = None) -> None:
        """Write the first `count` submissions queued (all by default)."""
        self.end_of_turn()
        count = len(self._queued) if count is None else count
        batch, self._queued = self._queued[:count], self._queued[count:]
        results = self.store.write([op for operations, _ in batch for op in operations])
        self._written += len(batch)
        done = 0
        for operations, d in batch:
            done += len(operations)
            d.callback(results[done - 1])
        ready = [d for upto, d in self._barriers if upto <= self._written]
        self._barriers = [(upto, d) for upto, d in self._barriers if upto > self._written]
        for d in ready:
            d.callback(None)

    def fail(self, error: Exception) -> None:
        self.end_of_turn()  # as the real one: what was held back for the next batch fails too
        batch, self._queued = self._queued, []
        for _, d in batch:
            d.errback(error)


class Replica:
    """A ReplicaLog over a real store in `directory`, with the stand-in writer."""

    def __init__(self, directory: Path) -> None:
        self.store = OrderStore(directory, table_id(STOCKS))
        self.committer = ManualCommitter(self.store)
        self.durable_events = 0
        self.write_failures: list[Any] = []
        self.log = ReplicaLog(Clock(), self.store, self.committer, StockBook(STOCKS),
                              self._durable, self.write_failures.append)

    def _durable(self) -> None:
        self.durable_events += 1

    def lead(self, epoch: int = 1) -> Entry:
        assert self.log.core.promise(epoch, own=True)
        entry = self.log.core.lead()
        self.log.append([entry])
        return entry

    def place(self, name: str, type_: str, quantity: int, key: str) -> Entry:
        entry = self.log.core.place(name, type_, quantity, key)
        assert isinstance(entry, Entry)
        self.log.append([entry])
        return entry


def fired(d: Deferred) -> Any:
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


def leader_batch(epoch: int, after: Entry | None, *trades: tuple) -> list[Entry]:
    """What a leader of `epoch` appended after `after`: its leader entry, then trades."""
    return log_of((Kind.LEADER,), *[(Kind.TRADE, *t) for t in trades], epoch=epoch, after=after)


@pytest.fixture
def replica(tmp_path: Path) -> Replica:
    return Replica(tmp_path)


# ---- the leader's own entries -----------------------------------------------------------------


def test_recent_entries_are_found_before_they_are_on_disk(replica: Replica) -> None:
    leader_entry = replica.lead()
    trade = replica.place("ford", "buy", 2, "k1")
    log = replica.log
    assert replica.store.find_key("k1") is None and replica.store.last_index == -1
    assert log.logged_under("k1") == trade and log.logged_under("") is None and log.logged_under("k2") is None
    assert log.entry_at(1) == trade and log.chain_at(1) == trade.chain
    assert log.entries_in(range(0, 2)) == [leader_entry, trade]
    assert log.core.last_durable == -1 and replica.durable_events == 0
    replica.committer.flush()
    # Appended in one turn, the leader entry and the trade went to the disk as one write.
    assert log.core.last_durable == 1 and replica.durable_events == 1 and len(replica.committer.submitted) == 1
    assert replica.store.find_key("k1") == trade == log.logged_under("k1")


def test_the_trades_of_one_batch_go_to_the_disk_as_one_write_with_one_commit_point(replica: Replica) -> None:
    replica.lead()
    replica.committer.flush()
    replica.log.commit(0)
    trades = [replica.place("ford", "buy", 1, f"k{i}") for i in range(3)]
    assert replica.committer.submitted[1:] == [], "held back for the committer's next batch"
    replica.committer.end_of_turn()
    assert replica.committer.pending == 1
    assert replica.committer.submitted[-1] == [*(Append(t) for t in trades), SetCommitted(0)]
    replica.committer.flush()
    assert replica.log.core.last_durable == 3 and replica.store.last_index == 3


def test_held_back_appends_go_before_any_later_write_and_a_barrier_waits_for_them(replica: Replica) -> None:
    replica.lead()
    barrier = replica.log.barrier()
    assert replica.committer.pending == 1 and not barrier.called, "the barrier covers the held-back entry"
    trade = replica.place("ford", "buy", 1, "k1")
    replica.log.learn_epoch(5)
    assert replica.committer.submitted[-1] == [Append(trade), SetEpoch(5, floor=False)]
    replica.committer.flush()
    assert fired(barrier) is None and replica.store.last_index == 1 and replica.store.epoch == 5


def test_entries_are_forgotten_once_committed_and_on_disk(replica: Replica) -> None:
    replica.lead()
    trade = replica.place("ford", "buy", 2, "k1")
    log = replica.log
    log.commit(1)  # on a majority, but not yet on our disk: kept
    assert log.committed == 1 and set(log._recent) == {0, 1} and set(log._recent_keys) == {"k1"}
    replica.committer.flush()
    assert log._recent == {} and log._recent_keys == {}
    assert log.logged_under("k1") == trade == log.entry_at(1), "now read from the disk"
    assert log.entries_in(range(0, 2)) == replica.store.after(-1, 2)


def test_entries_on_disk_stay_in_memory_until_committed(replica: Replica) -> None:
    replica.lead()
    replica.place("ford", "buy", 2, "k1")
    replica.place("tesla", "sell", 1, "k2")
    replica.committer.flush()
    log = replica.log
    assert set(log._recent) == {0, 1, 2}
    log.commit(1)
    assert set(log._recent) == {2} and set(log._recent_keys) == {"k2"}
    log.commit(0)  # the commit point never goes back
    assert log.committed == 1


def test_the_commit_point_rides_along_with_the_next_append(replica: Replica, tmp_path: Path) -> None:
    replica.lead()
    replica.committer.flush()
    log = replica.log
    writes = len(replica.committer.submitted)
    log.commit(0)
    assert len(replica.committer.submitted) == writes, "no write of its own"
    assert replica.store.committed == -1
    replica.place("ford", "buy", 1, "k1")
    replica.committer.end_of_turn()
    assert replica.committer.pending == 1 and replica.committer.submitted[-1][-1] == SetCommitted(0)
    replica.committer.flush()
    assert replica.store.committed == 0
    replica.place("ford", "buy", 1, "k2")
    replica.committer.end_of_turn()
    assert replica.committer.pending == 1
    assert not any(isinstance(op, SetCommitted) for op in replica.committer.submitted[-1]), "already on disk"
    replica.committer.flush()
    replica.store.close()
    assert OrderStore(tmp_path, table_id(STOCKS)).committed == 0


def test_an_idle_leader_writes_the_commit_point_on_its_own(replica: Replica) -> None:
    replica.lead()
    replica.committer.end_of_turn()
    assert replica.committer.pending == 1, "the leader entry is submitted"
    clock = replica.log.reactor
    replica.log.commit(0)  # the leader entry is on a majority, not yet on our disk
    clock.advance(COMMIT_PERSIST_DELAY)
    assert len(replica.committer.submitted) == 1, "a write is on its way: wait for it"
    replica.committer.flush()
    clock.advance(COMMIT_PERSIST_DELAY)
    assert replica.committer.submitted[-1] == [SetCommitted(0)]
    replica.committer.flush()
    assert replica.store.committed == 0
    clock.advance(COMMIT_PERSIST_DELAY * 10)
    assert len(replica.committer.submitted) == 2 and clock.getDelayedCalls() == []


def test_committed_trades_are_answered_only_once_committed(replica: Replica) -> None:
    replica.lead()
    trade = replica.place("ford", "buy", 1, "k1")
    log = replica.log
    assert log.committed_trade(0) is None, "not committed yet"
    log.commit(1)  # a majority holds it durably, not necessarily this replica yet
    assert log.committed_trade(0) == trade, "committed: answered from memory before our disk has it"
    replica.committer.flush()
    assert log.committed_trade(0) == trade
    replica.place("ford", "buy", 1, "k2")
    replica.committer.flush()
    assert log.committed_trade(1) is None, "on disk, not committed"
    assert log.committed_trade(5) is None


def test_a_failed_write_is_reported(replica: Replica) -> None:
    replica.lead()
    replica.committer.fail(OSError("disk full"))
    (failure,) = replica.write_failures
    assert failure.check(OSError) and replica.log.core.last_durable == -1


# ---- a follower's log -------------------------------------------------------------------------


def test_a_leaders_batch_is_answered_once_it_is_on_disk(replica: Replica) -> None:
    batch = leader_batch(3, None, ("ford", "buy", 1), ("tesla", "buy", 2))
    written, deposed, _ = replica.log.receive(-1, bytes(16), [e.record() for e in batch], 2, 3, leader_commit=1)
    assert not deposed and not written.called
    (operations,) = replica.committer.submitted
    assert operations[:4] == [SetEpoch(3), *(Append(e) for e in batch)]
    assert set(operations[4:]) == {SetCommitted(1)}
    replica.committer.flush()
    assert fired(written) == (order_pb2.PROPAGATE_STATUS_OK, 2, 3)
    assert list(replica.store.after(-1, 10)) == batch
    assert (replica.store.epoch, replica.store.committed, replica.log.committed) == (3, 1, 1)
    assert replica.log.core.book.stock("ford").quantity == 4


def test_a_batch_that_does_not_fit_is_answered_without_writing(replica: Replica) -> None:
    batch = leader_batch(1, None, ("ford", "buy", 1))
    written, _, _ = replica.log.receive(0, batch[0].chain, [e.record() for e in batch[1:]], 1, 1)
    assert replica.committer.submitted == [[SetEpoch(1)]], "only the newer epoch it learned"
    assert not written.called
    replica.committer.flush()
    assert fired(written) == (order_pb2.PROPAGATE_STATUS_GAP, -1, 1) and replica.store.epoch == 1
    stale, _, _ = replica.log.receive(-1, bytes(16), [], -1, 0)
    assert fired(stale) == (order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 1)
    assert len(replica.committer.submitted) == 1 and replica.store.last_index == -1


def test_a_leader_hearing_from_a_newer_one_is_deposed(replica: Replica) -> None:
    replica.lead(epoch=1)
    replica.committer.flush()
    _, deposed, _ = replica.log.receive(-1, bytes(16), [], None, 2)
    assert deposed and not replica.log.core.is_leader


def test_a_truncation_drops_the_dead_tail_from_memory_and_disk(replica: Replica) -> None:
    old = leader_batch(1, None, ("ford", "buy", 1), ("ford", "buy", 1), ("ford", "buy", 1))
    replica.log.receive(-1, bytes(16), [e.record() for e in old], 3, 1)
    replica.committer.flush()
    new = leader_batch(2, old[1], ("tesla", "buy", 5))
    written, _, _ = replica.log.receive(1, old[1].chain, [e.record() for e in new], 3, 2, leader_commit=3)
    operations = replica.committer.submitted[-1]
    assert operations[:4] == [SetEpoch(2), Truncate(1), *(Append(e) for e in new)]
    assert set(operations[4:]) == {SetCommitted(3)}
    assert replica.log.logged_under(new[1].key) == new[1] and replica.log.entry_at(2) == new[0]
    replica.committer.flush()
    assert fired(written)[0] == order_pb2.PROPAGATE_STATUS_OK
    assert replica.store.after(-1, 10) == old[:2] + new
    assert replica.log.logged_under(old[2].key) is None and replica.log.logged_under(old[3].key) is None
    assert replica.log.core.book.stock("ford").quantity == 4 and replica.log.core.book.stock("tesla").quantity == 5


def test_nothing_is_forgotten_while_a_truncation_is_on_its_way_to_disk(replica: Replica) -> None:
    """A write queued before a truncation reports an index the truncation is about to undo:
    entries must stay in memory until the truncation is on disk, or the dead ones on disk
    would be read in their place."""
    old = leader_batch(1, None, ("ford", "buy", 1), ("ford", "buy", 1), ("ford", "buy", 1))
    replica.log.receive(-1, bytes(16), [e.record() for e in old], 3, 1)  # not yet written
    new = leader_batch(2, old[1], ("tesla", "buy", 5))
    replica.log.receive(1, old[1].chain, [e.record() for e in new], 3, 2, leader_commit=3)
    replica.committer.flush(1)  # the old batch is on disk; the truncation is not
    assert replica.log.entry_at(2) == new[0] and replica.log.entry_at(3) == new[1]
    replica.committer.flush()
    assert replica.log._recent == {}
    assert replica.log.entry_at(2) == new[0] and replica.log.entry_at(3) == new[1]


def test_a_dead_entry_still_on_disk_is_never_answered_as_committed(replica: Replica) -> None:
    old = leader_batch(1, None, ("ford", "buy", 1), ("ford", "buy", 1), ("ford", "buy", 1))
    replica.log.receive(-1, bytes(16), [e.record() for e in old], 3, 1)  # not yet written
    new = leader_batch(2, old[1], ("tesla", "buy", 5))
    replica.log.receive(1, old[1].chain, [e.record() for e in new], 3, 2, leader_commit=3)
    replica.committer.flush(1)
    # The disk still holds the dead leader's trades at indexes 2 and 3; in memory, the new
    # leader's entries replace them, committed (through 3) though not on disk yet.
    live = {e.number: e for e in new if e.is_trade}
    for dead in (e for e in old[2:] if e.is_trade):
        assert replica.log.committed_trade(dead.number) == live.get(dead.number)
    assert live and all(replica.log.committed_trade(n) == e for n, e in live.items())


def test_a_promise_is_answered_once_it_is_on_disk(replica: Replica) -> None:
    granted = replica.log.promise(1)
    assert not granted.called and replica.committer.submitted == [[SetEpoch(1)]]
    replica.committer.flush()
    assert fired(granted) == (True, 1) and replica.store.epoch == 1
    assert fired(replica.log.promise(1)) == (False, 1)
    assert len(replica.committer.submitted) == 1, "a refused promise writes nothing"


def test_a_restarted_log_starts_from_what_is_on_disk(tmp_path: Path) -> None:
    first = Replica(tmp_path)
    first.lead(epoch=4)
    first.place("ford", "buy", 3, "k1")
    first.place("tesla", "sell", 2, "k2")
    first.place("ford", "buy", 9, "k3")  # refused: ford holds 2
    first.log.commit(3)
    first.place("ford", "sell", 1, "k4")
    first.committer.flush()
    first.store.close()
    again = Replica(tmp_path)
    core = again.log.core
    assert (core.last_index, core.last_number, core.epoch, core.last_durable) == (4, 2, 4, 4)
    assert again.log.committed == 3
    assert core.book.stocks() == first.log.core.book.stocks()
    assert core.book.stock("ford").quantity == 3 and core.book.stock("tesla").quantity == 12
    assert again.log.logged_under("k3").kind is Kind.REFUSED


# ---- against the real group committer ---------------------------------------------------------

class HeldWriter:
    """A ReplicaLog on the real GroupCommitter, whose writer can be held in its batch."""

    def __init__(self, directory: Path) -> None:
        self.store = OrderStore(directory, table_id(STOCKS))
        self.entered, self.gate = threading.Event(), threading.Event()
        self.gate.set()
        self.writes: list[list[Any]] = []
        self.fail_next = False
        self.committer = GroupCommitter(reactor, self._flush, name="test")
        self.committer.startService()
        self.failures: list[Any] = []
        self.log = ReplicaLog(reactor, self.store, self.committer, StockBook(STOCKS), lambda: None,
                              self.failures.append)

    def _flush(self, operations: list[Any]) -> list[int]:
        self.entered.set()
        self.gate.wait(5)
        self.writes.append(list(operations))
        if self.fail_next:
            raise OSError("disk gone")
        return self.store.write(operations)

    def place(self, key: str) -> Entry:
        entry = self.log.core.place("ford", "buy", 1, key)
        assert isinstance(entry, Entry)
        self.log.append([entry])
        return entry

    async def lead(self) -> None:
        assert self.log.core.promise(1, own=True)
        self.log.append([self.log.core.lead()])
        await self.log.barrier()

    async def hold_the_writer(self, key: str) -> Entry:
        """Place a trade and wait (polled, up to 5 s) until the writer holds its batch."""
        self.gate.clear()
        self.entered.clear()
        entry = self.place(key)
        if not await reactor_until(self.entered.is_set):
            raise AssertionError("the writer never took the batch")
        return entry

    async def stop(self) -> None:
        self.gate.set()
        await maybeDeferred(self.committer.stopService)
        self.store.close()


@pytest_twisted.ensureDeferred
async def test_appends_held_back_behind_a_busy_writer_follow_it_in_order(tmp_path: Path) -> None:
    held = HeldWriter(tmp_path)
    try:
        await held.lead()
        first = await held.hold_the_writer("k1")
        later = [held.place("k2"), held.place("k3")]
        held.log.learn_epoch(7)
        barrier = held.log.barrier()
        assert held.log.core.last_durable == 0
        held.gate.set()
        await barrier
        assert held.log.core.last_durable == 3 == held.store.last_index
        assert held.writes[-2:] == [[Append(first)], [*(Append(e) for e in later), SetEpoch(7, floor=False)]]
    finally:
        await held.stop()


@pytest_twisted.ensureDeferred
async def test_appends_held_back_behind_a_failed_write_are_reported_failed_too(tmp_path: Path) -> None:
    held = HeldWriter(tmp_path)
    try:
        await held.lead()
        held.fail_next = True
        await held.hold_the_writer("k1")
        held.place("k2")
        held.gate.set()
        await reactor_until(lambda: len(held.failures) == 2)
        assert len(held.failures) == 2 and held.log.core.last_durable == 0
    finally:
        await held.stop()
