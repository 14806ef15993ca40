"""Many small calls to one peer as few batched RPCs, without making a lone call wait.

A unary gRPC call from Python costs far more CPU (call object, thread handoffs, a hop into the
peer's reactor) than the work a trade asks of the peer. Here calls go out at the end of the
reactor's turn while fewer than `max_in_flight` batches are outstanding, so the calls one event
makes (the trades of one incoming batch) leave together; otherwise they queue, and everything
queued leaves together when a batch returns, before that batch's callers hear its answer (their
work, a front end writing each trade's HTTP answer, would otherwise delay the next batch by as
much; a call its callers make then, a retry, waits for the batch after). Idle, that is one RPC
per call; under load batches grow by themselves and the per-call overhead is shared.

Items are independent: each has its own Deferred and deadline. An item still queued at its
deadline fails with TimeoutError and is never sent. A batch's call gets the earliest deadline
of the items in it, so once an item is sent its answer is as bounded as a call of its own
would be. Cancelling one item (its client went away) drops it from the queue or ignores its
answer, never the batch it travels in. A batch whose items were all cancelled (their
callers hung up, or gave up on the peer after a failed probe) no longer holds its place among
the `max_in_flight`: the calls queued behind it leave at once, instead of waiting up to its
deadline for an answer nobody wants. One such batch at a time (the next gives up its place
when that one returns), so at most `max_in_flight + 1` calls are out.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Sequence, TypeVar

from twisted.internet.defer import Deferred, TimeoutError, maybeDeferred
from twisted.python.failure import Failure

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchSizeMismatch(Exception):
    """The peer answered a batch with a different number of results than it was sent."""


class _Flight:
    """A batch sent and not answered yet."""

    __slots__ = ("wanted", "holds_place", "batcher")

    def __init__(self, size: int, batcher: "Batcher[Any, Any]") -> None:
        self.wanted = size  # items not cancelled
        self.holds_place = True  # counted among the batches in flight
        self.batcher = batcher


class _Entry:
    __slots__ = ("item", "deferred", "deadline", "expiry", "queued", "flight")

    def __init__(self, item: Any, deadline: float) -> None:
        self.item = item
        self.deadline = deadline
        self.deferred: Deferred = Deferred(canceller=self._cancelled)
        self.expiry: Any = None
        self.queued = True
        self.flight: _Flight | None = None  # once sent

    def _cancelled(self, _: Deferred) -> None:
        self.leave_queue()
        if self.flight is not None:
            self.flight.batcher._unwanted(self.flight)

    def leave_queue(self) -> None:
        self.queued = False
        if self.expiry is not None and self.expiry.active():
            self.expiry.cancel()
        self.expiry = None


class Batcher(Generic[Item, Result]):
    """`send(items, timeout)` returns (a Deferred of) one result per item, in order; `timeout`
    is the seconds left before the earliest deadline among them."""

    def __init__(
        self,
        send: Callable[[list[Item], float], "Deferred[Sequence[Result]] | Sequence[Result]"],
        reactor: Any,
        max_in_flight: int = 2,
        max_batch: int = 512,
        end_of_turn: bool = True,
    ) -> None:
        """`end_of_turn=False` sends as soon as a batch may, without waiting for the reactor's
        turn to end (for tests that do not run one)."""
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._send = send
        self._reactor = reactor
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._end_of_turn = end_of_turn
        self._queue: list[_Entry] = []  # may hold entries that left it; skipped when sending
        self._in_flight = 0
        self._abandoned = 0  # batches out whose items were all cancelled: they hold no place
        self._unwanted_next: list[_Flight] = []  # unwanted too: they give up their places next
        self._dispatch_call: Any = None
        self.batches_sent = 0
        self.items_sent = 0

    def submit(self, item: Item, timeout: float) -> Deferred:
        """Fires with the item's result, or fails with whatever failed its batch, or with
        TimeoutError if it could not be sent within `timeout` seconds."""
        entry = _Entry(item, self._reactor.seconds() + timeout)
        entry.expiry = self._reactor.callLater(timeout, self._expire, entry)
        self._queue.append(entry)
        self._dispatch_soon()
        return entry.deferred

    def _dispatch_soon(self) -> None:
        if not self._end_of_turn:
            self._dispatch()
        elif self._dispatch_call is None and self._in_flight < self._max_in_flight:
            self._dispatch_call = self._reactor.callLater(0, self._dispatch)

    def _unwanted(self, flight: _Flight) -> None:
        """An item of `flight` was cancelled; once none is wanted, it gives up its place."""
        flight.wanted -= 1
        if flight.wanted == 0 and flight.holds_place:
            if self._abandoned == 0:
                self._abandon(flight)
            else:
                self._unwanted_next.append(flight)

    def _abandon(self, flight: _Flight) -> None:
        flight.holds_place = False
        self._in_flight -= 1
        self._abandoned += 1
        self._dispatch_soon()

    @property
    def queued(self) -> int:
        return sum(1 for entry in self._queue if entry.queued)

    def _expire(self, entry: _Entry) -> None:
        entry.expiry = None
        if entry.queued:
            entry.leave_queue()
            entry.deferred.errback(TimeoutError("not sent within its deadline"))

    def _dispatch(self) -> None:
        if self._dispatch_call is not None:
            if self._dispatch_call.active():
                self._dispatch_call.cancel()
            self._dispatch_call = None
        while self._in_flight < self._max_in_flight:
            self._queue = [entry for entry in self._queue if entry.queued]
            if not self._queue:
                return
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            flight = _Flight(len(batch), self)
            for entry in batch:
                entry.leave_queue()
                entry.flight = flight
            self._in_flight += 1
            self.batches_sent += 1
            self.items_sent += len(batch)
            timeout = max(0.0, min(entry.deadline for entry in batch) - self._reactor.seconds())
            sent = maybeDeferred(self._send, [entry.item for entry in batch], timeout)
            sent.addBoth(self._answered, [entry.deferred for entry in batch], flight)

    def _answered(self, results: Any, waiting: list[Deferred], flight: _Flight) -> None:
        if flight.holds_place:
            self._in_flight -= 1
        else:
            self._abandoned -= 1
        flight.wanted = -1  # answered: a cancel from now on changes nothing
        if flight in self._unwanted_next:
            self._unwanted_next.remove(flight)
        elif self._unwanted_next and self._abandoned == 0:
            self._abandon(self._unwanted_next.pop(0))
        if not isinstance(results, Failure) and len(results) != len(waiting):
            results = Failure(BatchSizeMismatch(f"sent {len(waiting)} items, got {len(results)} results"))
        self._dispatch()
        for i, d in enumerate(waiting):
            if d.called:  # cancelled while in flight: nobody waits for it any more
                continue
            if isinstance(results, Failure):
                d.errback(results)
            else:
                d.callback(results[i])
        if isinstance(results, Failure):
            results.cleanFailure()
