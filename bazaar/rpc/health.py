"""The standard gRPC health service (grpc.health.v1), without grpcio-health's deadlock.

grpcio-health's HealthServicer sends a watcher its answers while holding its one lock, and a
send waits until the server's completion-queue thread reports it done. That same thread runs
the callbacks of every call that ends, and the one that forgets an ended watch takes that lock.
So a watch that ends while another watch's answer is being sent stops the server for good:
the thread that would report the send done waits for the lock, whose holder waits for that
report. The process's own calls out keep working; nothing reaches its handlers any more. Peers
whose watches end and start again together (they reconnect at once after this process was
frozen, or renew their holds at the same moment) make that likely.

Here the lock guards only the tables and is never held while sending. Nor does any caller's
thread send: neither a handler thread (whose Watch would otherwise wait for its first answer)
nor the reactor (whose set() would wait for every watcher). A few sender threads do, one send
per watcher at a time and always the status current when it goes, so answers never arrive out
of order; a send that waits longer than STALL for its reader (one that stopped reading, or
made its window tiny) cancels that watch, which frees the sender. Slow readers can delay the
others' answers by up to STALL each (only outside tools watch a service that changes: the
cluster's own holds watch one that never does). Checks and watches answer as
grpcio-health's do (an unknown name: NOT_FOUND for a check, SERVICE_UNKNOWN for a watch); a
watch needs the server's non-blocking streams, which hold no handler thread.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from twisted.logger import Logger

log = Logger()

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

# A send waits at most this long for its reader before its watch is cancelled.
STALL = 2.0
SENDERS = 2

Send = Callable[[Any], Any]


class _Senders:
    """Daemon threads that send watchers their status, and one that cancels each send that has
    waited STALL for its reader (one watchdog, not a timer per send). Started by the first
    watch; daemons, so a send stuck at exit does not hold the process."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._queue: queue.SimpleQueue[_Watcher] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._sending: dict[_Watcher, float] = {}
        self._started = False

    def submit(self, watcher: "_Watcher") -> None:
        with self._lock:
            start, self._started = not self._started, True
        if start:
            for i in range(self._count):
                threading.Thread(target=self._send_loop, name=f"health-send-{i}", daemon=True).start()
            threading.Thread(target=self._watch_loop, name="health-watchdog", daemon=True).start()
        self._queue.put(watcher)

    @contextmanager
    def sending(self, watcher: "_Watcher") -> Iterator[None]:
        with self._lock:
            self._sending[watcher] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._sending.pop(watcher, None)

    def _send_loop(self) -> None:
        while True:
            self._queue.get().drain(self)

    def _watch_loop(self) -> None:
        while True:
            time.sleep(STALL / 4)
            now = time.monotonic()
            with self._lock:
                stuck = [w for w, since in self._sending.items() if now - since >= STALL]
            for watcher in stuck:
                watcher.cancel()


class _Watcher:
    def __init__(self, send: Send, current: Callable[[], int], cancel: Callable[[], Any], senders: _Senders) -> None:
        self._send = send
        self._current = current
        self._cancel = cancel
        self._senders = senders
        self._lock = threading.Lock()  # never held while sending
        self._sent: int | None = None
        self._draining = False

    def update(self) -> None:
        """Have the current status sent, unless it was; returns at once."""
        with self._lock:
            if self._draining:
                return  # the drain under way reads the status again before it stops
            self._draining = True
        self._senders.submit(self)

    def drain(self, senders: _Senders) -> None:
        try:
            while True:
                with self._lock:
                    status = self._current()
                    if status == self._sent:
                        self._draining = False
                        return
                    self._sent = status
                with senders.sending(self):
                    self._send(health_pb2.HealthCheckResponse(status=status))
        except Exception:
            # A watch we cannot answer is ended, not left silent: its caller watches again.
            log.failure("answering a health watch failed")
            self.cancel()

    def cancel(self) -> None:
        try:
            self._cancel()
        except Exception:
            log.failure("cancelling a health watch failed")


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, int] = {"": SERVING}
        self._watchers: dict[str, set[_Watcher]] = {}
        self._shut_down = False
        self._senders = _Senders(SENDERS)

    def _status_of(self, service: str) -> int | None:
        with self._lock:
            return self._status.get(service)

    def _watched_status(self, service: str) -> int:
        status = self._status_of(service)
        return SERVICE_UNKNOWN if status is None else status

    def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        status = self._status_of(request.service)
        if status is None:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request: health_pb2.HealthCheckRequest, context: Any, send_response_callback: Send | None = None) -> None:
        if send_response_callback is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server cannot hold a watch without a thread")
        service = request.service
        watcher = _Watcher(send_response_callback, lambda: self._watched_status(service), context.cancel,
                           self._senders)
        with self._lock:
            self._watchers.setdefault(service, set()).add(watcher)

        def ended() -> None:
            # Runs on the completion-queue thread: it must never wait for a send.
            with self._lock:
                watchers = self._watchers.get(service, set())
                watchers.discard(watcher)
                if not watchers:
                    self._watchers.pop(service, None)
            send_response_callback(None)

        if not context.add_callback(ended):
            ended()
            return
        watcher.update()

    Watch.experimental_non_blocking = True  # type: ignore[attr-defined]

    def set(self, service: str, status: int) -> None:
        """Set `service`'s status and tell its watchers (ignored once shut down)."""
        with self._lock:
            if self._shut_down:
                return
            self._status[service] = status
            watchers = list(self._watchers.get(service, ()))
        for watcher in watchers:
            watcher.update()

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on, whatever is set later."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            self._status = dict.fromkeys(self._status, NOT_SERVING)
            watchers = [w for ws in self._watchers.values() for w in ws]
        for watcher in watchers:
            watcher.update()
