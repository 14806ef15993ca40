"""Many small calls to one peer as few batched RPCs, without making a lone call wait.

A unary gRPC call from Python costs far more CPU (call object, thread handoffs, a hop into the
peer's reactor) than the work a trade asks of the peer. Here calls go out at the end of the
reactor's turn while fewer than `max_in_flight` batches are outstanding, so the calls one event
makes (the trades of one incoming batch) leave together; otherwise they queue, and everything
queued leaves together when a batch returns. Idle, that is one RPC per call; under load
batches grow by themselves and the per-call overhead is shared.

Items are independent: each has its own Deferred, and cancelling one (its client went away)
drops it from the queue or ignores its answer, never the batch it travels in.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Sequence, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatchSizeMismatch(Exception):
    """The peer answered a batch with a different number of results than it was sent."""


class Batcher(Generic[Item, Result]):
    """`send(items)` returns (a Deferred of) one result per item, in order."""

    def __init__(
        self,
        send: Callable[[list[Item]], "Deferred[Sequence[Result]] | Sequence[Result]"],
        max_in_flight: int = 2,
        max_batch: int = 512,
        reactor: Any = None,
    ) -> None:
        """Without a reactor, a call goes out as soon as a batch may (for tests)."""
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._send = send
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._queue: list[tuple[Item, Deferred]] = []
        self._in_flight = 0
        self._reactor = reactor
        self._dispatch_call: Any = None
        self.batches_sent = 0

    def submit(self, item: Item) -> Deferred:
        """Fires with the item's result, or fails with whatever failed its batch."""
        entry: tuple[Item, Deferred] | None = None

        def cancel(_: Deferred) -> None:
            if entry in self._queue:
                self._queue.remove(entry)

        d: Deferred = Deferred(canceller=cancel)
        entry = (item, d)
        self._queue.append(entry)
        if self._reactor is None:
            self._dispatch()
        elif self._dispatch_call is None and self._in_flight < self._max_in_flight:
            self._dispatch_call = self._reactor.callLater(0, self._dispatch)
        return d

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _dispatch(self) -> None:
        if self._dispatch_call is not None:
            if self._dispatch_call.active():
                self._dispatch_call.cancel()
            self._dispatch_call = None
        while self._queue and self._in_flight < self._max_in_flight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._in_flight += 1
            self.batches_sent += 1
            sent = maybeDeferred(self._send, [item for item, _ in batch])
            sent.addBoth(self._answered, [d for _, d in batch])

    def _answered(self, results: Any, waiting: list[Deferred]) -> None:
        self._in_flight -= 1
        if not isinstance(results, Failure) and len(results) != len(waiting):
            results = Failure(BatchSizeMismatch(f"sent {len(waiting)} items, got {len(results)} results"))
        for i, d in enumerate(waiting):
            if d.called:  # cancelled while in flight: nobody waits for it any more
                continue
            if isinstance(results, Failure):
                d.errback(results)
            else:
                d.callback(results[i])
        if isinstance(results, Failure):
            results.cleanFailure()
        self._dispatch()
