"""Requests no correct peer sends, at an order replica's gRPC face: each is INVALID_ARGUMENT (or
RESOURCE_EXHAUSTED for a stream beyond its slots), changes nothing, writes nothing, and the
replica starts and stands again afterwards. One test per measured attack."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from bazaar.config import Config
from bazaar.core.bounds import MAX_EPOCH
from bazaar.core.chain import GENESIS, Kind, Record, chained
from bazaar.core.lease import LEASE
from bazaar.core.stock import table_id
from bazaar.order.replica import Replica
from bazaar.order.servicer import OrderServicer
from bazaar.order.store import OrderStore
from bazaar.rpc import limits
from bazaar.rpc.convert import record_to_proto
from bazaar.rpc.streams import StreamSlots
from bazaar.v1 import order_pb2, trade_pb2
from tests.unit.test_order_log import ManualCommitter, fired
from tests.unit.test_order_servicer import Channels, InlineHop, SlowForOneStock

BUY, SELL = trade_pb2.TRADE_TYPE_BUY, trade_pb2.TRADE_TYPE_SELL
OWN, PEER = "127.0.0.1:56894", "127.0.0.1:56895"  # replicas 1 and 2 by default
# What leader 2 of epoch 1 logged: its leader entry and two trades.
LOG = chained([
    Record(0, 1, Kind.LEADER, -1),
    Record(1, 1, Kind.TRADE, 0, "tesla", "buy", 1, "a"),
    Record(2, 1, Kind.TRADE, 1, "ford", "sell", 2, "b"),
])


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code


class Context:
    """A handler's context: `abort` raises as gRPC's does; callbacks run at `end`."""

    def __init__(self, remaining: float | None = 5.0) -> None:
        self.remaining = remaining
        self.cancelled = False
        self.callbacks: list[Any] = []

    def time_remaining(self) -> float | None:
        return self.remaining

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)

    def is_active(self) -> bool:
        return not self.cancelled

    def cancel(self) -> None:
        self.cancelled = True

    def add_callback(self, callback: Any) -> bool:
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        for callback in self.callbacks:
            callback()


class FlushingHop:
    """Runs the call at once and writes what it submitted, as the reactor and writer would."""

    def __init__(self, committer: ManualCommitter) -> None:
        self._committer = committer

    def call(self, f: Any, *args: Any, timeout: float | None = None) -> Any:
        d = maybeDeferred(f, *args)
        self._committer.flush()
        result = fired(d)
        if isinstance(result, Failure):
            result.raiseException()
        return result


class Follower:
    """Replica 1, past its first lease, following leader 2 through LOG[:2]."""

    def __init__(self, directory: Path, streams: StreamSlots | None = None, stall: float = 10.0) -> None:
        self.directory = directory
        config = Config(data_dir=directory)
        self.store = OrderStore(directory, table_id(config.stocks))
        self.committer = ManualCommitter(self.store)
        self.clock = Clock()
        self.replica = Replica(self.clock, config, 1, self.store, self.committer, Channels(),  # type: ignore[arg-type]
                               lambda name: None)
        self.replica.ready = True  # its rejoin attempt is over
        self.servicer = OrderServicer(self.replica, FlushingHop(self.committer), 2.0,  # type: ignore[arg-type]
                                      streams=streams, stall=stall)
        assert self.propagate(batch(-1, LOG[:2], leader_last=1)).status == order_pb2.PROPAGATE_STATUS_OK
        self.clock.advance(LEASE)  # its leader's lease has lapsed: it may promise

    def extend(self, count: int) -> None:
        """`count` more trades from the leader, in batches as it sends them."""
        last = self.replica.core.last_index
        number = self.replica.core.last_number
        records = [Record(last + 1 + i, 1, Kind.TRADE, number + 1 + i, "ford", "sell", 1, f"t{i}") for i in range(count)]
        entries = chained(records, self.replica.log.chain_at(last))
        for start in range(0, count, limits.MAX_BATCH):
            part = entries[start:start + limits.MAX_BATCH]
            prev = part[0].index - 1
            request = order_pb2.PropagateRequest(
                prev_index=prev, prev_chain=self.replica.log.chain_at(prev), entries=[record_to_proto(e) for e in part],
                leader_last=part[-1].index, epoch=1, leader_commit=-1, leader_id=2)
            assert self.propagate(request).status == order_pb2.PROPAGATE_STATUS_OK

    def propagate(self, request: order_pb2.PropagateRequest) -> order_pb2.PropagateResponse:
        return self.servicer.Propagate(request, Context())

    def state(self) -> tuple:
        core = self.replica.core
        return (core.epoch, core.floor, core.last_index, core.book.stocks(), len(self.committer.submitted),
                self.store.epoch, self.store.last_index)

    def restarted(self) -> Replica:
        """The replica as a restart finds it on disk."""
        self.store.close()
        config = Config(data_dir=self.directory)
        store = OrderStore(self.directory, table_id(config.stocks))
        return Replica(Clock(), config, 1, store, ManualCommitter(store), Channels(), lambda name: None)  # type: ignore[arg-type]


def batch(prev: int, entries: list[Any], leader_last: int | None = None, **fields: Any) -> order_pb2.PropagateRequest:
    request = order_pb2.PropagateRequest(
        prev_index=prev, prev_chain=GENESIS if prev == -1 else LOG[prev].chain,
        entries=[e if isinstance(e, trade_pb2.LogEntry) else record_to_proto(e) for e in entries],
        leader_last=prev + len(entries) if leader_last is None else leader_last, epoch=1, leader_commit=-1,
        leader_id=2,
    )
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def entry(**fields: Any) -> trade_pb2.LogEntry:
    """Entry 2 after LOG[1], a trade unless told otherwise."""
    values = dict(index=2, epoch=1, kind=trade_pb2.ENTRY_KIND_TRADE, number=1, name="ford", type=SELL, quantity=2,
                  key="b")
    values.update(fields)
    return trade_pb2.LogEntry(**values)


def refused(call: Any, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> str:
    with pytest.raises(Aborted) as aborted:
        call()
    assert aborted.value.code is code, aborted.value
    return str(aborted.value)


# ---- Propagate: "orders that break the log's constraints crashed all three replicas" -------------


PROPAGATES = {
    "a key the log holds": batch(1, [entry(key="a")]),
    "a key twice in the batch": batch(1, [entry(key="c"), entry(index=3, number=2, key="c")]),
    "a stock not in the table": batch(1, [entry(name="nope")]),
    "more than the stock holds": batch(1, [entry(type=BUY, quantity=5000)]),
    "a refusal that fits": batch(1, [entry(kind=trade_pb2.ENTRY_KIND_REFUSED, type=BUY, number=0)]),
    "a negative quantity": batch(1, [entry(quantity=-5)]),
    "a quantity beyond any trade": batch(1, [entry(quantity=10**15)]),
    "no trade type": batch(1, [entry(type=0)]),
    "an unknown trade type": batch(1, [entry(type=7)]),
    "an unknown kind": batch(1, [entry(kind=9)]),
    "a huge name": batch(1, [entry(name="x" * 100_000)]),
    "a huge key": batch(1, [entry(key="k" * 3_000_000)]),
    "a key that is not printable ASCII": batch(1, [entry(key="k\x00")]),
    "a number at the top": batch(1, [entry(number=2**63 - 1)]),
    "an entry epoch at the top": batch(1, [entry(epoch=2**63 - 1)], epoch=2**63 - 1),
    "a leader epoch at the top": batch(1, [entry()], epoch=2**63 - 1),
    "a leader epoch of 0": batch(1, [entry()], epoch=0),
    "a commit point beyond the leader's last": batch(1, [entry()], leader_commit=3),
    "a leader's last beyond any index": batch(1, [entry()], leader_last=2**63 - 1),
    "an unknown leader id": batch(1, [entry()], leader_id=99),
    "a chain of the wrong size": batch(1, [entry()], prev_chain=b"\0" * 3),
    "too many entries": batch(1, [entry(index=2 + i, number=1 + i, key=f"m{i}") for i in range(limits.MAX_BATCH + 1)]),
    "entries out of sequence": batch(1, [entry(index=5)]),
}


@pytest.mark.parametrize("request_", PROPAGATES.values(), ids=PROPAGATES.keys())
def test_a_batch_no_leader_sends_is_invalid_and_nothing_is_written(tmp_path: Path, request_) -> None:
    follower = Follower(tmp_path)
    before = follower.state()
    message = refused(lambda: follower.propagate(request_))
    assert len(message) < 300, "the message names the problem, it does not echo the input"
    assert follower.state() == before
    assert follower.propagate(batch(1, LOG[2:])).status == order_pb2.PROPAGATE_STATUS_OK, "the leader goes on"
    assert follower.restarted().core.last_index == 2, "and the replica starts from its disk"


# ---- Synchronize with an epoch: "a promise of 2^63-1 made every takeover overflow" --------------------


def promise(follower: Follower, epoch: int, candidate: int = 2) -> order_pb2.SynchronizeResponse:
    request = order_pb2.SynchronizeRequest(epoch=epoch, candidate_id=candidate)
    return next(iter(follower.servicer.Synchronize(request, Context())))


@pytest.mark.parametrize("epoch", [2**63 - 1, MAX_EPOCH + 1, -1])
def test_a_promise_out_of_range_is_invalid_and_the_replica_stands_again_after_a_restart(tmp_path: Path, epoch):
    follower = Follower(tmp_path)
    before = follower.state()
    refused(lambda: promise(follower, epoch))
    assert follower.state() == before
    replica = follower.restarted()
    assert replica.core.epoch == 1
    stand = replica.core.next_epoch()
    assert stand == 2 and replica.core.promise(stand, own=True), "a takeover after it stands as before"


def test_a_promise_far_beyond_what_the_replica_has_seen_is_refused_and_writes_nothing(tmp_path: Path):
    follower = Follower(tmp_path)
    before = follower.state()
    response = promise(follower, 10**18)
    assert (response.refused, response.epoch, response.leader_alive) == (True, 1, False)
    assert follower.state() == before
    response = promise(follower, 2, candidate=3)
    assert not response.refused and follower.store.epoch == 2, "a candidate one step ahead is promised"


# ---- RequestBatch: "one 1.35 MB RequestBatch added 380 MB to the leader" -----------------------------


@pytest.mark.parametrize("orders", [
    [order_pb2.PlaceOrderRequest(name="ford", quantity=1, type=BUY)] * (limits.MAX_BATCH + 1),
    [order_pb2.PlaceOrderRequest(name="x" * 101, quantity=1, type=BUY)],
    [order_pb2.PlaceOrderRequest(name="ford", quantity=1, type=BUY, idempotency_key="k" * 3_000_000)],
    [order_pb2.PlaceOrderRequest(name="ford", quantity=1, type=BUY, idempotency_key=" k")],
], ids=["too many orders", "a huge name", "a huge key", "a key the front end never takes"])
def test_orders_no_front_end_sends_are_invalid_and_none_is_placed(orders) -> None:
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, hop=None, timeout=2.0)  # type: ignore[arg-type]
    refused(lambda: servicer.RequestBatch(order_pb2.RequestBatchRequest(orders=orders), Context()))
    assert replica.placed == []


def test_a_quantity_or_type_no_trade_has_is_the_leaders_answer_per_order() -> None:
    """Not the whole batch's: the front end sends such orders on (the API's order of checks)."""
    replica = SlowForOneStock()
    servicer = OrderServicer(replica, InlineHop(), timeout=2.0)  # type: ignore[arg-type]
    orders = [order_pb2.PlaceOrderRequest(name="nope", quantity=-(2**63), type=-5, idempotency_key="fe-" + "0" * 32),
              order_pb2.PlaceOrderRequest(name="", quantity=0, type=0)]
    response = servicer.RequestBatch(order_pb2.RequestBatchRequest(orders=orders), Context())
    assert len(response.results) == 2 and [name for name, _, _ in replica.placed] == ["nope", ""]


# ---- the other requests' fields -------------------------------------------------------------------


@pytest.mark.parametrize("request_", [
    order_pb2.SynchronizeRequest(caller="127.0.0.1:9"),
    order_pb2.SynchronizeRequest(caller=OWN),
    order_pb2.SynchronizeRequest(caller="x" * 1_000_000),
    order_pb2.SynchronizeRequest(epoch=2, candidate_id=99),
    order_pb2.SynchronizeRequest(checkpoints=[order_pb2.Checkpoint(index=-1, chain=GENESIS)] * 10_000),
    order_pb2.SynchronizeRequest(checkpoints=[order_pb2.Checkpoint(index=0, chain=b"\0" * 17)]),
    order_pb2.SynchronizeRequest(checkpoints=[order_pb2.Checkpoint(index=-2, chain=GENESIS)]),
], ids=["an unknown caller", "itself as caller", "a huge caller", "an unknown candidate", "too many checkpoints",
        "a chain of the wrong size", "an index before the log"])
def test_a_synchronize_no_replica_sends_is_invalid_and_changes_nothing(tmp_path: Path, request_) -> None:
    follower = Follower(tmp_path)
    before = follower.state()
    refused(lambda: next(iter(follower.servicer.Synchronize(request_, Context()))))
    assert follower.state() == before


def test_a_follower_list_longer_than_the_replicas_is_invalid_and_starts_no_takeover(tmp_path: Path) -> None:
    follower = Follower(tmp_path)
    request = order_pb2.AssignFollowersRequest(followers=[PEER] * 10_000)
    refused(lambda: follower.servicer.AssignFollowers(request, Context()))
    request = order_pb2.AssignFollowersRequest(followers=["x" * 10_000])
    refused(lambda: follower.servicer.AssignFollowers(request, Context()))
    assert follower.replica.generation == 0 and not follower.replica.core.is_leader


# ---- Synchronize streams: "80 unread streams stopped the whole API" -------------------------------


def test_streams_beyond_their_slots_are_refused_at_once_and_a_slot_comes_back_when_one_ends(tmp_path: Path):
    follower = Follower(tmp_path, streams=StreamSlots(2))
    contexts = [Context() for _ in range(3)]
    streams = [follower.servicer.Synchronize(order_pb2.SynchronizeRequest(), c) for c in contexts]
    assert next(streams[0]).prev_index == -1 and next(streams[1]).prev_index == -1  # both serving
    refused(lambda: next(streams[2]), grpc.StatusCode.RESOURCE_EXHAUSTED)
    contexts[0].end()  # the RPC ended (its generator may be collected much later)
    assert next(follower.servicer.Synchronize(order_pb2.SynchronizeRequest(), Context())).prev_index == -1


def test_a_stream_whose_reader_takes_nothing_is_cancelled(tmp_path: Path):
    follower = Follower(tmp_path, stall=0.05)
    follower.extend(limits.SYNC_BATCH)  # two messages' worth
    context = Context()
    stream = follower.servicer.Synchronize(order_pb2.SynchronizeRequest(), context)
    assert len(next(stream).entries) == limits.SYNC_BATCH  # its send now waits for a reader that does not read
    end = time.monotonic() + 5
    while not context.cancelled:
        assert time.monotonic() < end, "never cancelled"
        time.sleep(0.01)  # polling interval
    assert list(stream) == [], "cancelled, it sends nothing more"
    stream = follower.servicer.Synchronize(order_pb2.SynchronizeRequest(), Context())
    assert sum(len(r.entries) for r in stream) == limits.SYNC_BATCH + 2, "a reader that reads gets it all"
