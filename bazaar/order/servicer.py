"""gRPC face of an order replica: each handler checks its request's bounds (rpc/limits.py),
then hops into the reactor with a bounded wait.

The rejoin stream reads the log from the handler thread through its own SQLite connection:
committed orders never change under a leader, so it needs no reactor state. Streams take a
slot and run under a watchdog (rpc/streams.py), so that readers that do not read cannot take
every handler thread.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from concurrent.futures import Future, wait
from typing import Any, Iterator

import grpc
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from bazaar.core.replica import MalformedBatch
from bazaar.rpc import limits
from bazaar.rpc.convert import order_to_proto, record_from_proto, record_to_proto
from bazaar.rpc.bridge import ReactorHop, ReactorUnavailable, remaining
from bazaar.rpc.streams import StreamSlots, Watchdog
from bazaar.order.replica import NotLeading, Replica
from bazaar.order.store import LogSnapshot, SnapshotFile
from bazaar.v1 import order_pb2, order_pb2_grpc

logger = Logger()

SYNC_BATCH = limits.SYNC_BATCH
# A batch of orders is answered this long before the caller's deadline, so the answer arrives.
ANSWER_MARGIN = 0.1
# While the leader copies its log for a snapshot, the reader hears from it this often, so that
# a copy longer than the reader's idle timeout is not taken for a silent leader.
SNAPSHOT_KEEPALIVE = 0.25
# Free disk a snapshot's copy leaves besides the copy itself, for the log's own writes.
SNAPSHOT_SPARE = 64 * 2**20


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, replica: Replica, hop: ReactorHop, timeout: float,
                 streams: StreamSlots | None = None, stall: float = limits.STREAM_STALL) -> None:
        self._replica = replica
        self._hop = hop
        self._timeout = timeout
        self._replicas = limits.Replicas(replica.ids.values(), replica.peers)
        self._streams = streams or StreamSlots(limits.MAX_STREAMS)
        # One snapshot at a time: each is a copy of the whole log on our disk.
        self._copying = threading.Lock()
        self._stall = stall

    def _in_reactor(self, context: Any, f: Any, *args: Any) -> Any:
        left = remaining(context, self._timeout)
        if left <= 0:
            # Its caller has given up (this process may have been frozen): acting now could
            # only surprise it.
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the request's deadline passed before it was handled")
        try:
            return self._hop.call(f, *args, timeout=left)
        except ReactorUnavailable as e:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"replica busy or stopping: {e}")

    def Request(self, request: order_pb2.PlaceOrderRequest, context: Any) -> order_pb2.PlaceOrderResponse:
        return self.RequestBatch(order_pb2.RequestBatchRequest(orders=[request]), context).results[0]

    def RequestBatch(self, request: order_pb2.RequestBatchRequest, context: Any) -> order_pb2.RequestBatchResponse:
        # Each order is answered within the caller's deadline, so that one slow order cannot
        # fail the call and with it the others' answers: an order whose outcome is not known
        # by then is answered IN_DOUBT (it may still commit; asking again under its key tells).
        limits.enforce(context, limits.check_place_orders, request)
        budget = max(0.0, remaining(context, self._timeout) - ANSWER_MARGIN)
        placed = self._in_reactor(context, self._place_all, list(request.orders), budget)
        return order_pb2.RequestBatchResponse(results=[
            order_pb2.PlaceOrderResponse(status=status, transaction_number=max(number, 0))
            for status, number in placed
        ])

    def _place_all(self, orders: list[order_pb2.PlaceOrderRequest], budget: float) -> Deferred:
        """Each order as Request would handle it, all at once: they share the group commit
        and the propagation."""
        return gatherResults([
            Deferred.fromCoroutine(
                self._replica.place_order(o.name, o.quantity, o.type, o.idempotency_key, budget)
            ).addErrback(_in_doubt, o.name)
            for o in orders
        ])

    def Lookup(self, request: order_pb2.LookupOrderRequest, context: Any) -> order_pb2.LookupOrderResponse:
        try:
            order = self._in_reactor(context, self._replica.lookup, request.number)
        except NotLeading as e:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        if order is None:
            return order_pb2.LookupOrderResponse(found=False)
        return order_pb2.LookupOrderResponse(found=True, order=order_to_proto(order))

    def Propagate(self, request: order_pb2.PropagateRequest, context: Any) -> order_pb2.PropagateResponse:
        limits.enforce(context, limits.check_propagate, request, self._replicas)
        try:
            records = [record_from_proto(e) for e in request.entries]
            status, index, epoch, replaced = self._in_reactor(
                context, self._replica.receive,
                request.prev_index, request.prev_chain, records, request.leader_last, request.epoch,
                request.leader_commit, request.leader_id,
            )
        except (ValueError, MalformedBatch) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return order_pb2.PropagateResponse(status=status, last_index=index, epoch=epoch, replaced=replaced)

    def Describe(self, request: order_pb2.DescribeRequest, context: Any) -> order_pb2.DescribeResponse:
        return self._in_reactor(context, self._replica.describe)

    def AssignFollowers(
        self, request: order_pb2.AssignFollowersRequest, context: Any
    ) -> order_pb2.AssignFollowersResponse:
        limits.enforce(context, limits.check_assign, request, self._replicas)
        try:
            last = self._in_reactor(context, self._replica.assign_followers, list(request.followers))
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        return order_pb2.AssignFollowersResponse(last_index=last)

    def Synchronize(
        self, request: order_pb2.SynchronizeRequest, context: Any
    ) -> Iterator[order_pb2.SynchronizeResponse]:
        limits.enforce(context, limits.check_synchronize, request, self._replicas)
        yield from self._serve_stream(context, self._synchronize(request, context))

    def FetchSnapshot(
        self, request: order_pb2.FetchSnapshotRequest, context: Any
    ) -> Iterator[order_pb2.FetchSnapshotResponse]:
        limits.enforce(context, limits.check_fetch_snapshot, request, self._replicas)
        yield from self._serve_stream(context, self._snapshot(request, context))

    def _serve_stream(self, context: Any, responses: Iterator[Any]) -> Iterator[Any]:
        """A stream's messages, holding a slot while it runs and under a watchdog."""
        slot = self._streams.take()
        if slot is None:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{limits.MAX_STREAMS} log streams are running already: try again later")
        # Given back when the RPC ends, however it ends (a cancelled stream's generator is
        # only closed when it is collected).
        if not context.add_callback(slot.release):
            slot.release()
            return
        left = context.time_remaining()
        watchdog = Watchdog(context.cancel, self._stall,
                            limits.STREAM_DEADLINE if left is None else min(left, limits.STREAM_DEADLINE))
        try:
            for response in responses:
                if not context.is_active():
                    return  # cancelled: its reader is told so, never that the log ended here
                watchdog.sending()
                yield response
                watchdog.sent()
        finally:
            watchdog.sent()
            slot.release()

    def _synchronize(
        self, request: order_pb2.SynchronizeRequest, context: Any
    ) -> Iterator[order_pb2.SynchronizeResponse]:
        if request.epoch:
            granted, epoch, leader_alive = self._in_reactor(
                context, self._replica.promise, request.epoch, request.candidate_id,
            )
            if not granted:
                yield order_pb2.SynchronizeResponse(refused=True, epoch=epoch, leader_alive=leader_alive)
                return
        leading, epoch, committed = self._position(context)
        if request.caller and not leading:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the leader")
        with self._replica.store.snapshot() as snapshot:
            for response in _stream(snapshot, request, epoch, committed):
                if request.caller:
                    # Queued in order with the register hop below, so the last mark lands before it.
                    self._hold_feed(request.caller)
                yield response
        if request.caller and not self._in_reactor(context, self._replica.register_follower, request.caller):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no longer the leader")

    def _position(self, context: Any) -> tuple[bool, int, int]:
        """Whether we lead, our epoch, and our commit point as far as our disk holds it (a
        majority may hold entries before we do). Read before a stream's log is: every entry
        through that point is on our disk already, so what the stream reads holds it."""
        def position() -> tuple[bool, int, int]:
            core = self._replica.core
            return core.is_leader, core.epoch, min(self._replica.log.committed, core.last_durable)

        return self._in_reactor(context, position)

    def _hold_feed(self, caller: str) -> None:
        """`caller` reads our log on a stream meanwhile: its link sends it heartbeats only."""
        self._hop.reactor.callFromThread(self._replica.streaming_to, caller)

    def _snapshot(
        self, request: order_pb2.FetchSnapshotRequest, context: Any
    ) -> Iterator[order_pb2.FetchSnapshotResponse]:
        leading, epoch, committed = self._position(context)
        if not leading:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not the leader")
        if committed < 0:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nothing is committed yet")
        store = self._replica.store
        free, needed = shutil.disk_usage(store.path.parent).free, store.size() + SNAPSHOT_SPARE
        if free < needed:
            # Our own log's writes come first: a copy must never be what fills the disk.
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"a snapshot needs {needed:,} bytes free here, and {free:,} are: try again later")
        if not self._copying.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "a snapshot is being sent already: try again later")
        logger.info("sending a snapshot of entries 0 to {last} to {caller}", last=committed, caller=request.caller)
        copy = _Copy(store, committed, self._copying)
        # However the call ends (a cancelled stream's generator is only closed when collected).
        if not context.add_callback(copy.end):
            copy.end()
            return
        try:
            while True:
                self._hold_feed(request.caller)
                try:
                    snapshot = copy.result(SNAPSHOT_KEEPALIVE)
                except Exception as e:  # StoreError: no such entry; sqlite3.Error: a full disk
                    context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"no snapshot could be made: {e}")
                if snapshot is not None:
                    break
                yield order_pb2.FetchSnapshotResponse()  # still copying: the reader waits on
            yield order_pb2.FetchSnapshotResponse(
                last_index=snapshot.last_index, last_chain=snapshot.last_chain, epoch=epoch, size=snapshot.size,
            )
            digest = hashlib.sha256()
            with snapshot.path.open("rb") as file:
                while data := file.read(limits.SNAPSHOT_CHUNK):
                    digest.update(data)
                    self._hold_feed(request.caller)
                    yield order_pb2.FetchSnapshotResponse(data=data)
            yield order_pb2.FetchSnapshotResponse(digest=digest.digest())
        finally:
            copy.end()


class _Copy:
    """A snapshot's copy of the log, made on a thread of its own (a call's reader hears from
    it meanwhile). Its file goes, and the next snapshot may be made, once both the copy is done
    and the call that asked for it has ended (`end`), whichever comes last."""

    def __init__(self, store: Any, through: int, lock: threading.Lock) -> None:
        self.path = store.snapshot_path()
        self._lock = lock
        self._made: Future[SnapshotFile] = Future()
        self._mutex = threading.Lock()
        self._ended = self._finished = False
        try:
            threading.Thread(target=self._copy, args=(store, through), name="snapshot-copy", daemon=True).start()
        except BaseException:
            lock.release()
            raise

    def _copy(self, store: Any, through: int) -> None:
        try:
            self._made.set_result(store.copy_committed(self.path, through))
        except BaseException as e:
            self._made.set_exception(e)
        self._finish_if_over()

    def result(self, timeout: float) -> SnapshotFile | None:
        """The copy once made (None: not yet, after `timeout` seconds); raises what it raised."""
        wait([self._made], timeout)
        return self._made.result() if self._made.done() else None

    def end(self) -> None:
        with self._mutex:
            self._ended = True
        self._finish_if_over()

    def _finish_if_over(self) -> None:
        with self._mutex:
            if self._finished or not (self._ended and self._made.done()):
                return
            self._finished = True
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._lock.release()


def _in_doubt(failure: Failure, name: str) -> tuple[int, int]:
    """One order's unexpected error must not fail the others in its batch. Whether it was
    logged first is not known here, so it is not a definite refusal."""
    logger.failure("placing an order for {name} failed", failure, name=name)
    return order_pb2.REQUEST_STATUS_IN_DOUBT, -1


def _stream(log: LogSnapshot, request: order_pb2.SynchronizeRequest, epoch: int,
            committed: int = -1) -> Iterator[order_pb2.SynchronizeResponse]:
    """Every entry after the point where the caller's log and ours part, in batches."""
    cursor = shared_point(log, [(c.index, c.chain) for c in request.checkpoints])
    chain = log.chain(cursor)
    caller = request.caller or "a new leader"
    logger.info("streaming entries after {cursor} to {caller}", cursor=cursor, caller=caller)
    batch = log.after(cursor, SYNC_BATCH)
    while True:  # the first message goes out even if empty: it says where the logs part
        yield order_pb2.SynchronizeResponse(
            prev_index=cursor, prev_chain=chain, entries=[record_to_proto(e) for e in batch], epoch=epoch,
            leader_commit=committed,
        )
        if not batch:
            return
        cursor, chain = batch[-1].index, batch[-1].chain
        batch = log.after(cursor, SYNC_BATCH)
        if not batch:
            return


def shared_point(log: LogSnapshot, checkpoints: list[tuple[int, bytes]]) -> int:
    """The latest checkpoint at which the caller's log and ours agree (-1: none)."""
    last = log.last_index
    for index, chain in sorted(checkpoints, reverse=True):
        if 0 <= index <= last and log.chain(index) == chain:
            return index
    return -1
