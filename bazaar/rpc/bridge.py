"""The two crossings between gRPC's threads and the Twisted reactor.

Outbound (reactor -> gRPC): `call` turns a unary call's future into a Deferred that fires in
the reactor thread and cancels the RPC when cancelled; every call carries a deadline.

Inbound (gRPC handler thread -> reactor): `ReactorHop.call` runs a function in the reactor and
waits for its (possibly Deferred) result for a bounded time, so a handler never hangs on a
reactor that is busy or shutting down (`blockingCallFromThread` would wait forever).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import grpc
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.python.failure import Failure


def deferred_from_future(reactor: Any, future: grpc.Future) -> Deferred:
    """A Deferred for a grpc.Future, fired in the reactor thread."""

    def cancel(_: Deferred) -> None:
        future.cancel()

    d: Deferred = Deferred(canceller=cancel)

    def fire(f: grpc.Future) -> None:
        if d.called:  # cancelled from our side; the canceller already errbacked
            return
        if f.cancelled():
            d.errback(CancelledError())
            return
        exc = f.exception()
        if exc is None:
            d.callback(f.result())
        else:
            d.errback(exc)

    future.add_done_callback(lambda f: reactor.callFromThread(fire, f))
    return d


def call(reactor: Any, method: Any, request: Any, timeout: float, wait_for_ready: bool = False) -> Deferred:
    """Start a unary RPC with a deadline, without blocking the reactor.

    `wait_for_ready` lets the call ride out a peer's restart (the channel reconnecting) within
    its deadline, instead of failing at once.
    """
    extra = {"wait_for_ready": True} if wait_for_ready else {}
    future = method.future(request, timeout=timeout, **extra)
    return deferred_from_future(reactor, future)


class ReactorUnavailable(Exception):
    """The reactor did not answer in time (busy, stopping or stopped)."""


class ReactorHop:
    """Lets gRPC handler threads call into reactor-owned state, with a time bound."""

    def __init__(self, reactor: Any, timeout: float) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._stopping = threading.Event()

    @property
    def reactor(self) -> Any:
        return self._reactor

    def stop(self) -> None:
        """Refuse new hops: the reactor is going away."""
        self._stopping.set()

    def call(self, f: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        if self._stopping.is_set():
            raise ReactorUnavailable("shutting down")
        done = threading.Event()
        box: list[Any] = []
        limit = self._timeout if timeout is None else timeout
        expires = time.monotonic() + limit

        def finish(result: Any) -> None:
            box.append(result)
            done.set()

        def run() -> None:
            if time.monotonic() > expires:
                # The handler has given up waiting (the process was frozen, or the reactor
                # busy): what it asked for must not happen behind its caller's back.
                finish(Failure(ReactorUnavailable("the call expired before the reactor took it")))
                return
            maybeDeferred(f, *args).addBoth(finish)

        self._reactor.callFromThread(run)
        if not done.wait(max(limit, 0.0)):
            raise ReactorUnavailable(f"no answer from the reactor within {limit:.2f}s")
        result = box[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result


def remaining(context: grpc.ServicerContext, default: float) -> float:
    """Seconds left before the caller's deadline (or `default` when it set none)."""
    left = context.time_remaining()
    return default if left is None else min(left, default)
