"""Every gRPC server's calls: by method and status code, with their durations."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry

from bazaar.metrics.registry import TimedCalls, log
from bazaar.rpc.observe import CallObserver


class GrpcServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._calls = TimedCalls(
            registry,
            ("bazaar_grpc_server_calls_total", "gRPC calls this process's server finished, by method and status code.",
             ["service", "method", "code"]),
            ("bazaar_grpc_server_call_duration_seconds",
             "Seconds from a gRPC call reaching its handler to the handler's end (a stream's: after its last message).",
             ["service", "method"]),
        )

    def interceptor(self) -> CallObserver:
        return CallObserver(self.record)

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        try:  # called inside the call's handler: a metric's bug must not fail the call
            key = (method, code)
            children = self._calls.children(key)
            if children is None:
                service, _, name = method.lstrip("/").partition("/")
                children = self._calls.add(key, (service, name, code.name), (service, name))
            children[0].inc()
            children[1].observe(seconds)
        except Exception:
            log.failure("counting a gRPC call failed")
