"""Synchronize streams over a real gRPC server whose readers do not read: they cannot take the
handler threads from the unary calls, beyond their slots they are refused at once, and a stalled
one is cancelled, its thread and slot free again. (Attack: 80 unread streams on a log of ~100k
orders stopped the whole API.)"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import grpc
import pytest

from bazaar.core.chain import Kind, Record, chained
from bazaar.core.stock import DEFAULT_STOCKS, table_id
from bazaar.order import servicer as servicer_module
from bazaar.order.servicer import OrderServicer
from bazaar.order.snapshot import check_snapshot_file, fetch_snapshot
from bazaar.order.store import OrderStore
from bazaar.rpc import limits
from bazaar.rpc.services import CHANNEL_OPTIONS, SERVER_OPTIONS
from bazaar.rpc.streams import StreamSlots
from bazaar.v1 import order_pb2, order_pb2_grpc

WORKERS = 6
STALL = 0.5
ENTRIES = 40_000
COMMITTED = 12_345


class StreamingReplica:
    """What Synchronize and Describe need of a replica: a real store holding a long log."""

    ids = {"127.0.0.1:1": 1, "127.0.0.1:2": 2, "127.0.0.1:3": 3}
    peers = ["127.0.0.1:2", "127.0.0.1:3"]

    def __init__(self, store: OrderStore) -> None:
        self.store = store
        self.core = SimpleNamespace(is_leader=True, epoch=1, last_durable=store.last_index)
        self.log = SimpleNamespace(committed=COMMITTED)

    def describe(self) -> order_pb2.DescribeResponse:
        return order_pb2.DescribeResponse(replica_id=1, last_index=self.store.last_index)

    def register_follower(self, address: str) -> bool:
        return True

    def streaming_to(self, address: str) -> None:
        pass


class DirectHop:
    reactor = SimpleNamespace(callFromThread=lambda f, *args: f(*args))

    def call(self, f: Any, *args: Any, timeout: float | None = None) -> Any:
        return f(*args)


class Server:
    def __init__(self, directory: Path) -> None:
        self.store = OrderStore(directory, table_id(DEFAULT_STOCKS))
        records = [Record(0, 1, Kind.LEADER, -1)] + [
            Record(i, 1, Kind.TRADE, i - 1, "tesla", "sell", 1, f"{i:0128d}") for i in range(1, ENTRIES)
        ]
        self.store.append(chained(records))
        self.replica = StreamingReplica(self.store)
        servicer = OrderServicer(self.replica, DirectHop(), timeout=2.0,  # type: ignore[arg-type]
                                 streams=StreamSlots(limits.MAX_STREAMS), stall=STALL)
        self.servicer = servicer
        self.server = grpc.server(ThreadPoolExecutor(max_workers=WORKERS), options=SERVER_OPTIONS,
                                  maximum_concurrent_rpcs=limits.MAX_CONCURRENT_RPCS)
        order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, self.server)
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()
        # An attacker's reader keeps its flow-control window small (no BDP probing): gRPC would
        # otherwise grow it to megabytes, and a whole unread log could fit in its buffers and
        # end normally instead of stalling its sender.
        self.channel = grpc.insecure_channel(self.address, options=[*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0)])
        self.stub = order_pb2_grpc.OrderServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None).wait()
        self.store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("log"))
    yield server
    server.close()


def read_all(stub: order_pb2_grpc.OrderServiceStub) -> int:
    return sum(len(r.entries) for r in stub.Synchronize(order_pb2.SynchronizeRequest(), timeout=30))


def served(stub: order_pb2_grpc.OrderServiceStub) -> bool:
    """Whether a new stream gets a slot now (and is read to its end)."""
    try:
        return read_all(stub) == ENTRIES
    except grpc.RpcError as e:
        if e.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise
        return False


def status(call: Any) -> grpc.StatusCode:
    """How a stream ended, once what it had sent is read."""
    try:
        for _ in call:
            pass
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def test_every_message_carries_the_commit_point_the_stream_began_with(server: Server):
    messages = list(server.stub.Synchronize(order_pb2.SynchronizeRequest(), timeout=30))
    assert sum(len(m.entries) for m in messages) == ENTRIES
    assert {m.leader_commit for m in messages} == {COMMITTED}


def test_a_commit_point_beyond_our_own_disk_is_told_only_as_far_as_the_disk_holds(server: Server):
    """A majority may hold entries before the leader's own fsync does: a stream read from our
    disk cannot vouch for more than it holds."""
    core = server.replica.core
    durable, core.last_durable = core.last_durable, COMMITTED - 5
    try:
        messages = list(server.stub.Synchronize(order_pb2.SynchronizeRequest(), timeout=30))
    finally:
        core.last_durable = durable  # the server is shared by the module's tests
    assert {m.leader_commit for m in messages} == {COMMITTED - 5}


def test_unread_streams_leave_threads_for_unary_calls_and_are_cancelled(server: Server):
    stub = server.stub
    assert read_all(stub) == ENTRIES, "a stream that is read runs to its end"
    # No deadline: only the server's watchdog can end them.
    opened = [stub.Synchronize(order_pb2.SynchronizeRequest()) for _ in range(3 * WORKERS)]
    try:
        # Without the slots every handler thread would be stuck in a send: DEADLINE_EXCEEDED.
        assert stub.Describe(order_pb2.DescribeRequest(), timeout=2).last_index == ENTRIES - 1
        end = time.monotonic() + 20.0
        while not served(stub):  # until the stalled streams have given their slots back
            assert time.monotonic() < end, "the stalled streams were never cancelled"
            time.sleep(0.05)  # polling interval
        codes = [status(call) for call in opened]
        assert codes.count(grpc.StatusCode.CANCELLED) == limits.MAX_STREAMS, codes
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == len(opened) - limits.MAX_STREAMS, codes
    finally:
        for call in opened:
            call.cancel()


def test_a_request_larger_than_any_correct_message_is_refused_before_it_is_parsed(server: Server):
    """Attack: one 1.35 MB RequestBatch of tiny orders added 380 MB to the leader."""
    request = order_pb2.RequestBatchRequest(orders=[order_pb2.PlaceOrderRequest(name="x", quantity=1)] * 300_000)
    assert request.ByteSize() > limits.MAX_MESSAGE
    with grpc.insecure_channel(server.address) as channel:  # gRPC's defaults, as an attacker's
        with pytest.raises(grpc.RpcError) as refused:
            order_pb2_grpc.OrderServiceStub(channel).RequestBatch(request, timeout=5)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


# ---- snapshots ------------------------------------------------------------------------------


def leftovers(server: Server) -> list[str]:
    return [p.name for p in server.store.path.parent.iterdir() if p.name.startswith("snapshot-")]


def wait_until(condition: Any, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {condition}"
        time.sleep(0.02)


def test_a_snapshot_is_the_committed_log_as_a_file_and_the_leaders_copy_goes(server: Server, tmp_path: Path):
    received = fetch_snapshot(server.channel, "127.0.0.1:2", tmp_path, 30.0, 5.0)
    checked = check_snapshot_file(received, DEFAULT_STOCKS)
    assert checked.last.index == received.last_index == COMMITTED
    assert checked.last == server.store.entry(COMMITTED)
    wait_until(lambda: leftovers(server) == [])


def test_a_slow_copy_keeps_its_reader_waiting_instead_of_silent(server: Server, tmp_path: Path, monkeypatch):
    made = server.store.copy_committed

    def slow(path: Path, through: int) -> Any:
        time.sleep(3.0)  # three times the reader's idle timeout below (its keepalives: every 0.25 s)
        return made(path, through)

    monkeypatch.setattr(server.store, "copy_committed", slow)
    received = fetch_snapshot(server.channel, "127.0.0.1:2", tmp_path, 30.0, 1.0)
    assert received.last_index == COMMITTED


def no_snapshot_under_way(server: Server) -> bool:
    lock = server.servicer._copying
    if not lock.acquire(blocking=False):
        return False
    lock.release()
    return True


def test_one_snapshot_at_a_time_and_the_next_once_the_first_reader_is_gone(server: Server, tmp_path: Path):
    wait_until(lambda: no_snapshot_under_way(server))  # the tests before: their calls end a little after
    first = server.stub.FetchSnapshot(order_pb2.FetchSnapshotRequest(caller="127.0.0.1:2"), timeout=30)
    header = next(m for m in first if m.size)
    assert header.last_index == COMMITTED and len(leftovers(server)) == 1
    second = server.stub.FetchSnapshot(order_pb2.FetchSnapshotRequest(caller="127.0.0.1:3"), timeout=30)
    assert status(second) is grpc.StatusCode.RESOURCE_EXHAUSTED
    first.cancel()
    wait_until(lambda: leftovers(server) == [] and no_snapshot_under_way(server))
    assert fetch_snapshot(server.channel, "127.0.0.1:3", tmp_path, 30.0, 5.0).last_index == COMMITTED


def test_no_snapshot_without_room_for_it_beside_the_log(server: Server, monkeypatch):
    monkeypatch.setattr(servicer_module.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
    call = server.stub.FetchSnapshot(order_pb2.FetchSnapshotRequest(caller="127.0.0.1:2"), timeout=30)
    assert status(call) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert leftovers(server) == []
