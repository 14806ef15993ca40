"""The standard gRPC health service (grpc.health.v1), without grpcio-health's deadlock.

grpcio-health's HealthServicer sends a watcher its answers while holding its one lock, and a
send waits until the server's completion-queue thread reports it done. That same thread runs
the callbacks of every call that ends, and the one that forgets an ended watch takes that lock.
So a watch that ends while another watch's answer is being sent stops the server for good:
the thread that would report the send done waits for the lock, whose holder waits for that
report. The process's own calls out keep working; nothing reaches its handlers any more. Peers
whose watches end and start again together (they reconnect at once after this process was
frozen, or renew their holds at the same moment) make that likely.

Here the lock guards only the tables and is never held while sending. Each watcher sends one
answer at a time, and always the status current when it sends, so answers never arrive out
of order. Checks and watches answer as grpcio-health's do (an unknown name: NOT_FOUND for a
check, SERVICE_UNKNOWN for a watch); a watch needs the server's non-blocking streams, which
hold no handler thread.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

Send = Callable[[Any], Any]


class _Watcher:
    def __init__(self, send: Send, current: Callable[[], int]) -> None:
        self._send = send
        self._current = current
        self._lock = threading.Lock()  # one send at a time, each with the status of its time
        self._sent: int | None = None

    def update(self) -> None:
        with self._lock:
            status = self._current()
            if status != self._sent:
                self._sent = status
                self._send(health_pb2.HealthCheckResponse(status=status))


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, int] = {"": SERVING}
        self._watchers: dict[str, set[_Watcher]] = {}
        self._shut_down = False

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
        watcher = _Watcher(send_response_callback, lambda: self._watched_status(service))
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
