"""One replica's log as the reactor sees it: the store on disk, the entries on their way there,
and the core that numbers and matches them.

Everything here runs in the reactor thread. Writes go through the group committer; entries not
yet committed stay in memory too (`recent`), so followers are fed and keys are found without
reading the disk. This is what every role shares: the follower path (`receive`) writes a
leader's batch here, and the leader appends its own entries here.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from bazaar.core.book import StockBook
from bazaar.core.bounds import MAX_EPOCH
from bazaar.core.chain import GENESIS, Entry, Record
from bazaar.core.replica import Accepted, Conflict, Gap, ReplicaCore, Stale
from bazaar.core.snapshot import CheckedSnapshot
from bazaar.order.store import Append, Install, OrderStore, SetCommitted, SetEpoch, Truncate, snapshot_chain
from bazaar.reactor.group_commit import GroupCommitter
from bazaar.v1 import order_pb2

log = Logger()

# A commit point that no append carries to disk is written on its own this long after it moved:
# soon enough for a restarted replica to answer lookups of nearly all it knew committed, late
# enough that the fsync it costs is paid once per second, not once per batch.
COMMIT_PERSIST_DELAY = 1.0
PRUNED_KEPT = 256

_OUTCOME_STATUS = {
    Gap: order_pb2.PROPAGATE_STATUS_GAP,
    Conflict: order_pb2.PROPAGATE_STATUS_CONFLICT,
    Stale: order_pb2.PROPAGATE_STATUS_STALE_EPOCH,
}


class ReplicaLog:
    def __init__(
        self, reactor: Any, store: OrderStore, committer: GroupCommitter, book: StockBook,
        on_durable: Callable[[], None], on_write_failed: Callable[[Any], None],
    ) -> None:
        self.reactor = reactor
        self.store = store
        book.apply_totals(store.stock_totals())
        self.core = ReplicaCore(book, store.last_entry, store.epoch, store.floor)
        self._committer = committer
        self._on_durable = on_durable
        self._on_write_failed = on_write_failed
        # Entries accepted but not yet known committed, by index and by key.
        self._recent: dict[int, Entry] = {}
        self._recent_keys: dict[str, Entry] = {}
        self._recent_trades: dict[int, Entry] = {}  # by transaction number
        # The latest entries let go of: each batch to a follower names the entry before it,
        # usually one just committed, and reading it back from the disk would cost a query.
        self._pruned: dict[int, Entry] = {}
        # Writes queued before a truncation report indexes it is about to undo: until it is on
        # disk, `last_durable` may run ahead, so nothing is pruned from `recent`.
        self._truncations_pending = 0
        self._truncations_submitted = 0
        # The highest index known committed: from a leader (as a follower), or our own count.
        self.committed = store.committed
        self._persist_call: Any = None
        self._writing = 0  # writes submitted and not yet on disk
        # The leader's appends not yet submitted: the committer takes them when its next batch
        # starts (`gather`), so the trades of one batch, placed one at a time, cost one write,
        # one commit point and one report of durability, not one each. Any other write, a
        # barrier or an install submits them first: the order on disk is the order they came in.
        self._appends: list[Append] = []
        assert committer.gather is None, "one log to a committer"
        committer.gather = self._submit_appends
        # A snapshot is on its way to disk (`install`): no batch is taken meanwhile.
        self.installing = False

    # -- reading ---------------------------------------------------------------------------

    def entry_at(self, index: int) -> Entry:
        """Entry `index` (<= last_index), from memory when recent."""
        entry = self._recent.get(index) or self._pruned.get(index) or self.store.entry(index)
        assert entry is not None, f"entry {index} is neither recent nor on disk"
        return entry

    def chain_at(self, index: int) -> bytes:
        return GENESIS if index == -1 else self.entry_at(index).chain

    def entries_in(self, indexes: range) -> list[Entry]:
        """The entries indexed `indexes`, from memory when they are all there, else what the
        disk holds of them (a prefix: entries not in memory are on disk)."""
        found = [self._recent.get(i) or self._pruned.get(i) for i in indexes]
        if all(found):
            return found  # type: ignore[return-value]
        return self.store.after(indexes.start - 1, len(indexes))

    def logged_under(self, key: str) -> Entry | None:
        """The entry this log holds under `key`, on disk or still on its way there."""
        if not key:
            return None
        entry = self._recent_keys.get(key)
        if entry is not None:
            return entry
        entry = self.store.find_key(key)
        if entry is None or entry.index > self.core.last_index or self._recent.get(entry.index, entry) != entry:
            return None  # a dropped entry whose truncation is still on its way to disk
        return entry

    def _key_holders(self, records: list[Record]) -> Callable[[str], int | None]:
        """Where this log holds each key of a batch, looked up at once on the first question
        (a batch refused before its keys matter costs no query): a query per entry would
        cost a catch-up of a million entries a million queries."""
        holders: dict[str, int] | None = None

        def holder(key: str) -> int | None:
            nonlocal holders
            if holders is None:
                holders = self._look_up_keys([r.key for r in records if r.key])
            return holders.get(key)

        return holder

    def _look_up_keys(self, keys: list[str]) -> dict[str, int]:
        stored = self.store.find_keys([k for k in keys if k not in self._recent_keys])
        holders: dict[str, int] = {}
        for key in keys:
            entry = self._recent_keys.get(key) or stored.get(key)
            if entry is not None and entry.index <= self.core.last_index and self._recent.get(entry.index, entry) == entry:
                holders[key] = entry.index
        return holders

    def committed_trade(self, number: int) -> Entry | None:
        """Trade `number` if this log holds it and knows it committed, else None. A committed
        trade may not be on our disk yet (a majority holds it without us: the leader's fsync
        that came last); it is in memory until it is."""
        entry = self._recent_trades.get(number)
        if entry is None:
            entry = self.store.by_number(number)
            if entry is not None and (entry.index > self.core.last_durable
                                      or self._recent.get(entry.index, entry) != entry):
                return None  # a dropped entry whose truncation is still on its way to disk
        if entry is None or entry.index > min(self.committed, self.core.last_index):
            return None
        return entry

    # -- writing ---------------------------------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Entries the leader just numbered (the core has accepted them already); they join
        the committer's next batch."""
        appends = [Append(e) for e in entries]
        self._remember(appends)
        self._appends += appends
        self._committer.wake()

    def _submit_appends(self) -> None:
        """Hand the appends held back to the committer (the committer's `gather`)."""
        if self._appends:
            self.write([])

    def receive(
        self, prev_index: int, prev_chain: bytes, records: list[Record],
        leader_last: int | None, leader_epoch: int | None, leader_commit: int = -1,
    ) -> tuple[Deferred, bool, bool]:
        """A leader's batch (propagated or streamed): (a Deferred firing with (PropagateStatus,
        index, epoch) once everything it changed is on disk, whether it made us step down,
        whether it was refused as coming from a leader of a stale epoch)."""
        if self.installing:
            if leader_epoch is not None and leader_epoch < self.core.floor:  # as `accept` would say
                return succeed((order_pb2.PROPAGATE_STATUS_STALE_EPOCH, self.core.last_index, self.core.epoch)), \
                    False, True
            return succeed((order_pb2.PROPAGATE_STATUS_GAP, self.core.last_index, self.core.epoch)), False, False
        was_leader, floor_before = self.core.is_leader, self.core.floor
        outcome = self.core.accept(prev_index, prev_chain, records, self.entry_at, leader_last, leader_epoch,
                                   keep_through=min(self.committed, self.core.last_index),
                                   key_holder=self._key_holders(records))
        deposed = was_leader and not self.core.is_leader
        if isinstance(outcome, Stale):
            result = (order_pb2.PROPAGATE_STATUS_STALE_EPOCH, self.core.last_index, self.core.epoch)
            return succeed(result), deposed, True
        operations: list[Any] = []
        if self.core.floor > floor_before:
            operations.append(SetEpoch(self.core.floor))
        if isinstance(outcome, Accepted):
            status, index = order_pb2.PROPAGATE_STATUS_OK, outcome.through
            operations += self._operations(outcome)
            # Entries up to `through` now match the leader's log: those it has committed are
            # committed here too, and ours to answer lookups for.
            known = min(leader_commit, outcome.through)
            if known > self.committed:
                # Written with the entries, or a little later on its own: a heartbeat that only
                # moves the commit point must not cost an fsync that the next batch waits for.
                self._learn_committed(known, write_now=bool(operations))
        else:
            status, index = _OUTCOME_STATUS[type(outcome)], outcome.last
        self.write(operations)
        return self.barrier().addCallback(lambda _: (status, index, self.core.epoch)), deposed, False

    def install(self, path: Path, last_index: int, epoch: int, check: Callable[[], Deferred]) -> Deferred:
        """Replace this log with a leader's snapshot: the file at `path`, inspected already
        (an order log, snapshot.inspect_snapshot), said to end at entry `last_index` and come
        from the leader of `epoch`. It replaces our entries after the last one both logs hold
        (our last, or else the last we know committed), once `check()` fires with it checked
        (a CheckedSnapshot; it runs while the rows are copied in). Fires True once it is on
        disk; False, with the reason logged, when it may not replace this log (we hold as much,
        or lead, or stand, or it comes from an epoch below our floor, or it differs from an
        entry we know committed), or it failed its check, or its rows did not fit. Batches that
        come meanwhile are answered as a gap: they are sent again once the log has its new end."""
        if self.installing or not self.core.may_install(last_index, epoch):
            log.info("a snapshot of entries 0 to {last} from the leader of epoch {epoch} may not replace this "
                     "log (entries 0 to {ours}, floor {floor}, {role})", last=last_index, epoch=epoch,
                     ours=self.core.last_index, floor=self.core.floor, role=self.core.role.value)
            return succeed(False)
        points = (self.core.last_index, min(self.committed, self.core.last_index))
        try:
            after = next((point for point in points if snapshot_chain(path, point) == self.chain_at(point)), None)
        except sqlite3.Error as e:
            log.error("a snapshot from the leader cannot be read: {error}", error=str(e))
            return succeed(False)
        if after is None:
            log.error("a snapshot from the leader differs from entry {index}, known committed here: not installed",
                      index=points[1])
            return succeed(False)
        passed: Future[bool] = Future()
        try:
            self._submit_appends()
            d = self._committer.submit_all([Install(path, after, last_index, epoch, passed)])
        except RuntimeError:  # the writer is stopping
            return succeed(False)
        self.installing = True
        checked: list[CheckedSnapshot] = []
        over = False

        def settle(result: Any) -> None:
            if isinstance(result, CheckedSnapshot) and result.last.index == last_index and result.epoch == epoch:
                checked.append(result)
            elif isinstance(result, Failure) and not over:
                log.error("a snapshot from the leader was refused: {error}", error=result.getErrorMessage())
            passed.set_result(bool(checked))

        check().addBoth(settle)

        def done(index: int) -> bool:
            nonlocal over
            self.installing, over = False, True
            if index != last_index or not checked:
                reason = self.store.install_refusal
                if reason is not None:
                    log.warn("a snapshot's entries were not installed: {reason}", reason=reason)
                return False
            snapshot = checked[0]
            self.core.installed(snapshot.last, snapshot.stocks, snapshot.epoch)
            self._recent.clear()
            self._recent_keys.clear()
            self._recent_trades.clear()
            self._pruned.clear()
            self.committed = max(self.committed, last_index)
            self._on_durable()
            return True

        def failed(failure: Any) -> Any:
            nonlocal over
            self.installing, over = False, True
            self._on_write_failed(failure)
            return failure

        return d.addCallbacks(done, failed)

    def promise(self, epoch: int, own: bool = False, candidate: int = 0) -> Deferred:
        """A candidate (or, `own`, we, standing) asks for `epoch`; fires with (granted, our
        epoch) once that is on disk."""
        if not self.core.promise(epoch, own, candidate):
            return succeed((False, self.core.epoch))
        self.write([SetEpoch(epoch, floor=not own)])
        return self.barrier().addCallback(lambda _: (True, epoch))

    def withdraw(self, epoch: int) -> None:
        """Our candidacy for `epoch` failed: follow the leaders we followed before it. Nothing
        to write: the floor on disk never held our own candidacy."""
        if self.core.withdraw(epoch):
            log.info("candidacy for epoch {epoch} withdrawn: leaders of epoch {floor} or later are "
                     "followed again", epoch=epoch, floor=self.core.floor)

    def learn_epoch(self, epoch: int) -> None:
        """A follower told us of a newer epoch than ours: remember it (one beyond MAX_EPOCH
        is no epoch any replica holds)."""
        if self.core.epoch < epoch <= MAX_EPOCH:
            self.core.epoch = epoch
            # Used up, not a floor: that epoch may be one a candidate only stood for.
            self.write([SetEpoch(epoch, floor=False)])

    def commit(self, index: int) -> None:
        """As the leader: entries through `index` are on a majority."""
        if index > self.committed:
            self._learn_committed(index, write_now=False)
            self._prune()

    def _learn_committed(self, index: int, write_now: bool) -> None:
        """Entries through `index` are committed. The next write carries that to disk; with
        none under way it is written on its own a little later (`write_now`: the caller is
        about to write)."""
        self.committed = index
        if not write_now and self._persist_call is None:
            self._persist_call = self.reactor.callLater(COMMIT_PERSIST_DELAY, self._persist_commit)

    def _persist_commit(self) -> None:
        """Appends carry the commit point to disk; an idle leader writes it on its own, so
        that once restarted it can still answer lookups of everything it committed."""
        self._persist_call = None
        if self.committed <= self.store.committed:
            return
        if self._writing:  # what is on its way may predate the latest commit: look again later
            self._persist_call = self.reactor.callLater(COMMIT_PERSIST_DELAY, self._persist_commit)
        else:
            self.write([SetCommitted(self.committed)])

    def stop(self) -> None:
        """The process is stopping: no more writes of our own (appends held back still go to
        the committer, as if they had been submitted when made)."""
        try:
            self._submit_appends()
        except RuntimeError:  # the committer stopped first (write dropped them): nobody was told of these
            pass
        if self._persist_call is not None and self._persist_call.active():
            self._persist_call.cancel()
        self._persist_call = None

    def barrier(self) -> Deferred:
        """Fires once everything written so far is on disk (appends held back included)."""
        self._submit_appends()
        return self._committer.barrier()

    def _operations(self, accepted: Accepted) -> list[Any]:
        operations: list[Any] = []
        if accepted.truncate_after is not None:
            log.warn("dropping entries after {after}: they differ from the leader's log",
                     after=accepted.truncate_after)
            for index in [i for i in self._recent if i > accepted.truncate_after]:
                self._forget(index)
            for index in [i for i in self._pruned if i > accepted.truncate_after]:
                del self._pruned[index]  # never a committed entry, but never kept past a truncation either
            operations.append(Truncate(accepted.truncate_after))
        return operations + [Append(e) for e in accepted.entries]

    def write(self, operations: list[Any]) -> None:
        """Submit `operations` to the disk, after the appends held back."""
        self._remember(operations)
        if self._appends:
            operations = [*self._appends, *operations]
            self._appends = []
        if not operations:
            return
        truncations = sum(1 for op in operations if isinstance(op, Truncate))
        if self.committed > self.store.committed and not any(isinstance(op, SetCommitted) for op in operations):
            # Costs no fsync of its own: it rides with the other operations.
            operations = [*operations, SetCommitted(self.committed)]
        self._truncations_pending += truncations
        self._truncations_submitted += truncations
        self._writing += 1
        self._committer.submit_all(operations).addCallbacks(
            self._written, self._on_write_failed, (truncations, self._truncations_submitted)
        )

    def _remember(self, operations: list[Any]) -> None:
        """Appended entries are found in memory from the moment they are made."""
        for op in operations:
            if isinstance(op, Append):
                self._recent[op.entry.index] = op.entry
                if op.entry.key:
                    self._recent_keys[op.entry.key] = op.entry
                if op.entry.is_trade:
                    self._recent_trades[op.entry.number] = op.entry

    def _written(self, last: int, truncations: int, truncations_before: int) -> None:
        self._writing -= 1
        self._truncations_pending -= truncations
        if truncations_before == self._truncations_submitted:
            self.core.durable(last)
        # else a later write truncates what this one wrote: `last` may name entries that are
        # already dropped in memory. That write reports the durable end once it is on disk.
        self._on_durable()
        self._prune()

    def _prune(self) -> None:
        """Forget recent entries that are committed and on our disk."""
        if self._truncations_pending:
            return
        through = min(self.committed, self.core.last_durable)
        for index in sorted(i for i in self._recent if i <= through):
            self._forget(index, kept=True)

    def _forget(self, index: int, kept: bool = False) -> None:
        entry = self._recent.pop(index)
        if entry.key and self._recent_keys.get(entry.key) is entry:
            del self._recent_keys[entry.key]
        if entry.is_trade and self._recent_trades.get(entry.number) is entry:
            del self._recent_trades[entry.number]
        if kept:
            self._pruned[index] = entry
            while len(self._pruned) > PRUNED_KEPT:
                del self._pruned[next(iter(self._pruned))]
