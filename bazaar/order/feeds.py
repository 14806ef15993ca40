"""What the leader sends each peer (see links.py for how): a follower gets the log entries it
lacks, the catalog the committed trades it has not applied yet."""

from __future__ import annotations

from typing import Callable, Iterable, Protocol

from twisted.logger import Logger

from bazaar.core.chain import Entry, Kind
from bazaar.core.replication import Replication
from bazaar.order.links import Later
from bazaar.rpc.convert import record_to_proto, trade_type_to_proto
from bazaar.rpc.limits import MAX_BATCH
from bazaar.v1 import catalog_pb2, order_pb2

log = Logger()

BATCH_LIMIT = MAX_BATCH  # what a follower or the catalog takes in one call (rpc/limits.py)
# A follower that answers GAP without progress is still writing an earlier batch: retry soon,
# then less and less often while it makes none (a replica installing a snapshot answers GAP
# for seconds: a batch of 1000 entries every 20 ms would take its reactor from the check), but
# always well within a lease, which its answers renew (core/lease.py: LEASE 0.5 s).
GAP_RETRY_DELAY = 0.02
GAP_RETRY_MAX = 0.1
# A TradeBatch costs the catalog and the leader about a millisecond of CPU each, whatever it
# carries, and the catalog is off the trade path: under load the next batch waits until this
# long after the last one left, so each carries more trades (a lone trade after a quiet spell
# still leaves at once; a catalog catching up, sent less than was committed, does not wait).
# Its price: a lookup that must reflect the caller's own trade (min_applied), and the other
# front ends' cache pushes, come up to this much later under load.
CATALOG_SPACING = 0.03
# The leader's thrift: a follower whose entries the others make a majority without
# (Replication.spare) gets them at most this often, so it takes several rounds' entries in one
# Propagate; full batches, and entries when it is needed, go at once, and a heartbeat rides on
# its next call. Each Propagate costs the follower and the leader about a millisecond of CPU
# whatever it carries, and a trade waits for two of the three replicas' disks anyway
# (docs/design.md has the numbers). Its price: a trade waits for the leader's own disk and the
# first follower's, not the second fastest of three; and, when the first follower freezes or is
# cut off, up to this much more, until its call has been out this long and it is not counted on
# (not_counted_on).
FOLLOWER_SPACING = 0.05
# A catalog that refuses a committed trade was made from another stock table: an operator
# must step in; asking again now and then shows when it has.
INCONSISTENT_RETRY_DELAY = 5.0


class Leader(Protocol):
    """What the feeds need of the leader (bazaar.order.leader.Leadership)."""

    replication: Replication
    epoch: int
    replica_id: int

    def now(self) -> float: ...

    @property
    def last_index(self) -> int: ...

    @property
    def committed_index(self) -> int: ...

    @property
    def committed_number(self) -> int: ...

    def chain_at(self, index: int) -> bytes: ...

    def entries_in(self, indexes: range) -> list[Entry]: ...

    def trades_after(self, number: int, limit: int) -> list[Entry]: ...

    def follower_answered(
        self, address: str, status: int, last_index: int, epoch: int, sent_at: float, replaced: bool,
    ) -> None: ...

    def follower_unreachable(self, address: str) -> None: ...

    def not_counted_on(self) -> set[str]: ...

    def is_streaming(self, address: str) -> bool: ...

    def catalog_applied(self, trades: list[Entry]) -> None: ...


class FollowerFeed:
    def __init__(self, leader: Leader, address: str) -> None:
        self._leader = leader
        self.address = address
        self._sent_at = 0.0
        self._last_gap: int | None = None
        self._stalls = 0  # GAP answers in a row without progress
        self._out = False  # a request of ours is unanswered
        # Set every heartbeat interval: the next request goes out even if it carries nothing.
        self.heartbeat_due = False

    def next_request(self) -> order_pb2.PropagateRequest | Later | None:
        leader = self._leader
        if leader.is_streaming(self.address):
            # It is reading our log on a rejoin stream (order/rejoin.py): entries sent here too
            # would race the stream for its reactor and its disk, and ours. Heartbeats still
            # go, so that it keeps faith with us.
            if not self.heartbeat_due:
                return None
            batch: tuple[int, range] | None = (leader.last_index, range(leader.last_index + 1, leader.last_index + 1))
        else:
            batch = leader.replication.to_send(self.address, leader.last_index, BATCH_LIMIT)
            if batch is not None and not self.heartbeat_due:
                wait = self._sent_at + FOLLOWER_SPACING - leader.now()
                if (wait > 0 and len(batch[1]) < BATCH_LIMIT
                        and leader.replication.spare(self.address, leader.not_counted_on())):
                    return Later(wait)
        if batch is None:
            # Up to date: an empty batch only as a heartbeat (it renews the leader's lease).
            # The commit point rides on it or on the next entries; a batch only to move it
            # was half of all the calls to followers under load, and delayed the next entries
            # by its round trip when they came meanwhile. What the follower does with it
            # (answer lookups when no leader can be reached) can wait a heartbeat interval.
            match = leader.replication.match(self.address)
            if match is None or not self.heartbeat_due:
                return None
            batch = (match, range(match + 1, match + 1))
        prev, indexes = batch
        self.heartbeat_due = False
        self._sent_at = leader.now()
        self._out = True
        return order_pb2.PropagateRequest(
            prev_index=prev,
            prev_chain=leader.chain_at(prev),
            entries=[record_to_proto(e) for e in leader.entries_in(indexes)],
            leader_last=leader.last_index,
            epoch=leader.epoch,
            leader_commit=leader.committed_index,
            leader_id=leader.replica_id,
        )

    @property
    def lacking(self) -> bool:
        """Its last answer was a gap: it lacks entries before ours (it is catching up, or
        holds entries back while it rejoins), so it takes none in the next round."""
        return self._last_gap is not None

    def out_for(self, now: float) -> float:
        """How long our unanswered request has been out (0: none is)."""
        return now - self._sent_at if self._out else 0.0

    def answered(self, response: order_pb2.PropagateResponse) -> float | None:
        self._out = False
        self._leader.follower_answered(
            self.address, response.status, response.last_index, response.epoch, self._sent_at, response.replaced,
        )
        gap = response.status == order_pb2.PROPAGATE_STATUS_GAP
        stalled = gap and self._last_gap == response.last_index
        self._last_gap = response.last_index if gap else None
        self._stalls = self._stalls + 1 if stalled else 0
        return min(GAP_RETRY_MAX, GAP_RETRY_DELAY * 2 ** (self._stalls - 1)) if stalled else None

    def unreachable(self) -> None:
        self._out = False
        self._leader.follower_unreachable(self.address)


def not_counted_on(
    feeds: Iterable[FollowerFeed], now: float, streaming: Callable[[str], bool], refusing: Iterable[str] = (),
) -> set[str]:
    """The followers the thrift does not count on to commit the next entries: a call of ours
    has been out to them longer than FOLLOWER_SPACING (frozen, cut off, slow), they read our
    log on a rejoin stream (and get heartbeats only), their last answer was a gap, or they
    refuse our entries (`refusing`: they promised a newer epoch to a candidate)."""
    slow = {f.address for f in feeds
            if f.out_for(now) > FOLLOWER_SPACING or f.lacking or streaming(f.address)}
    return slow.union(refusing)


class CatalogFeed:
    """The catalog learns the committed log in number order. Its first answer (to an empty
    batch) says how far it has applied; each later batch starts after that.

    Once it has applied everything committed when this leadership began, no trade of an
    earlier leader can be applied any more (each is applied once, in order): then every front
    end's cache is dropped once, for the pushes an earlier leader may not have made."""

    def __init__(self, leader: Leader) -> None:
        self._leader = leader
        self.applied: int | None = None
        self._sent: list[Entry] = []
        self._inherited: int | None = None  # what was committed when the catalog first answered
        # The index the trades after `applied` start from, once an answer tells (None: unknown,
        # found by number on disk): then the next batch comes from the leader's memory.
        self._from_index: int | None = None
        self._sent_at = -CATALOG_SPACING  # when the latest batch of trades left
        self._behind = False  # it left committed trades for the next batch

    def next_request(self) -> catalog_pb2.TradeBatchRequest | None:
        if self.applied is None:
            self._sent = []
            return catalog_pb2.TradeBatchRequest()
        if self.applied >= self._leader.committed_number:
            return None
        self._sent, self._behind = self._unapplied(self.applied, self._leader.committed_index)
        if not self._sent:
            return None
        self._sent_at = self._leader.now()
        return catalog_pb2.TradeBatchRequest(trades=[
            catalog_pb2.TradeStockRequest(
                number=e.number, name=e.name, quantity=e.quantity, type=trade_type_to_proto(e.type),
            )
            for e in self._sent
        ])

    def _unapplied(self, applied: int, through: int) -> tuple[list[Entry], bool]:
        """Up to BATCH_LIMIT committed trades (entries through index `through`) numbered after
        `applied`, in order, and whether committed trades may be left after them."""
        start = self._from_index
        if start is not None and start <= through:
            end = min(through, start + BATCH_LIMIT - 1)
            trades = [e for e in self._leader.entries_in(range(start, end + 1)) if e.kind is Kind.TRADE]
            if trades and trades[0].number == applied + 1:
                return trades, end < through
        found = self._leader.trades_after(applied, BATCH_LIMIT)
        trades = [e for e in found if e.index <= through]
        return trades, len(trades) == BATCH_LIMIT

    def answered(self, response: catalog_pb2.TradeBatchResponse) -> float | None:
        before = self.applied if self.applied is not None else -1
        if self.applied is None and self._inherited is None:
            self._inherited = self._leader.committed_number
        self.applied = response.applied_through
        applied = [e for e in self._sent if before < e.number <= self.applied]
        if applied and applied[-1].number == self.applied:
            self._from_index = applied[-1].index + 1
        elif self.applied != before:
            self._from_index = None  # it applied trades it was not sent here: look them up by number
        if applied:
            self._leader.catalog_applied(applied)
        if self._inherited is not None and self.applied >= self._inherited:
            self._inherited = None
            self._leader.catalog_caught_up()
        if response.status == catalog_pb2.TRADE_STATUS_INCONSISTENT:
            log.critical("the catalog cannot apply committed trade {number}: it was made from another "
                         "stock table than this replica", number=self.applied + 1)
            return INCONSISTENT_RETRY_DELAY
        if self._behind or (self._sent and self.applied < self._sent[-1].number):
            return None  # more to send now: a catalog catching up, or one that took only part
        wait = self._sent_at + CATALOG_SPACING - self._leader.now()
        return wait if wait > 0 else None

    def unreachable(self) -> None:
        """Nothing to undo: the catalog keeps what it applied, and says so when it answers."""
