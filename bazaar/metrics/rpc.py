"""Every gRPC server's calls: by method and status code, with their durations.

Only methods a server serves reach `record` (CallObserver passes over the names nobody serves),
and a process serves fewer than twenty. Still, past MAX_METHODS distinct methods, a new one is
labelled service and method "other": whatever reaches here, the label sets (and the children
kept for them) stay a bounded few.
"""

from __future__ import annotations

from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from bazaar.metrics.registry import TimedCalls, log
from bazaar.rpc.observe import CallObserver

MAX_METHODS = 64
OTHER = "other"


class GrpcServerMetrics:
    def __init__(self, registry: CollectorRegistry, max_methods: int = MAX_METHODS) -> None:
        self._calls = TimedCalls(
            registry,
            ("bazaar_grpc_server_calls_total", "gRPC calls this process's server finished, by method and status code.",
             ["service", "method", "code"]),
            ("bazaar_grpc_server_call_duration_seconds",
             "Seconds from a gRPC call reaching its handler to the handler's end (a stream's: after its last message).",
             ["service", "method"]),
        )
        self._max_methods = max_methods
        self._methods: set[str] = set()  # labelled by their own name

    def interceptor(self) -> CallObserver:
        return CallObserver(self.record)

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        try:  # called inside the call's handler: a metric's bug must not fail the call
            children = self._calls.children((method, code))
            if children is None:
                children = self._add(method, code)
            children[0].inc()
            children[1].observe(seconds)
        except Exception:
            log.failure("counting a gRPC call failed")

    def _add(self, method: str, code: grpc.StatusCode) -> tuple[Any, Any]:
        if method not in self._methods:
            if len(self._methods) >= self._max_methods:
                # Kept under None, which no method's name is: every such method shares these.
                other = self._calls.children((None, code))
                return other or self._calls.add((None, code), (OTHER, OTHER, code.name), (OTHER, OTHER))
            self._methods.add(method)
        service, _, name = method.lstrip("/").partition("/")
        return self._calls.add((method, code), (service, name, code.name), (service, name))
