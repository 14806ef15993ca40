"""The gRPC servers' call metrics: a real in-process server with the CallObserver first, as
Transport.observed installs it, and what each call leaves in the registry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from bazaar.metrics.rpc import GrpcServerMetrics
from bazaar.rpc.health import HealthServicer
from bazaar.rpc.transport import INSECURE, Transport
from tests.integration.cluster import wait_for

SERVICE = "test.v1.Probe"


def ok(request: bytes, context: Any) -> bytes:
    return request


def refused(request: bytes, context: Any) -> bytes:
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "not you")


def broken(request: bytes, context: Any) -> bytes:
    raise RuntimeError("a bug")


def stream(request: bytes, context: Any) -> Iterator[bytes]:
    yield from (b"a", b"b")


class Refuser(grpc.ServerInterceptor):
    """Stands in for the role check: refuses Secret before any handler runs."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if details.method.endswith("/Secret"):
            return grpc.unary_unary_rpc_method_handler(refused)
        return handler


@pytest.fixture
def served() -> Iterator[tuple[grpc.Channel, CollectorRegistry]]:
    registry = CollectorRegistry()
    metrics = GrpcServerMetrics(registry)
    transport = Transport(None)
    transport.interceptors = [Refuser()]
    observed = transport.observed(metrics.interceptor())
    assert observed.interceptors[1:] == transport.interceptors and transport.interceptors != observed.interceptors
    server = grpc.server(ThreadPoolExecutor(max_workers=2), interceptors=observed.interceptors)
    handlers = {name: grpc.unary_unary_rpc_method_handler(f) for name, f in
                (("Ok", ok), ("Refused", refused), ("Broken", broken), ("Secret", ok))}
    handlers["Stream"] = grpc.unary_stream_rpc_method_handler(stream)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, registry
    finally:
        channel.close()
        server.stop(None).wait(5)


def calls(registry: CollectorRegistry, method: str, code: str) -> float:
    return registry.get_sample_value("bazaar_grpc_server_calls_total",
                                     {"service": SERVICE, "method": method, "code": code}) or 0.0


def call(channel: grpc.Channel, method: str) -> grpc.StatusCode:
    try:
        channel.unary_unary(f"/{SERVICE}/{method}")(b"x", timeout=5)
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def test_calls_are_counted_by_method_and_code_and_timed(served):
    channel, registry = served
    assert [call(channel, m) for m in ("Ok", "Ok", "Refused", "Broken", "Secret", "Missing")] == [
        grpc.StatusCode.OK, grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED]
    assert calls(registry, "Ok", "OK") == 2
    assert calls(registry, "Refused", "PERMISSION_DENIED") == 1
    assert calls(registry, "Broken", "UNKNOWN") == 1
    assert calls(registry, "Secret", "PERMISSION_DENIED") == 1, "seen before the role check refused it"
    assert not [s for f in registry.collect() for s in f.samples if s.labels.get("method") == "Missing"], \
        "a method nobody serves is no label"
    count = registry.get_sample_value("bazaar_grpc_server_call_duration_seconds_count",
                                      {"service": SERVICE, "method": "Ok"})
    assert count == 2


def test_a_response_stream_is_recorded_when_it_ends(served):
    channel, registry = served
    assert list(channel.unary_stream(f"/{SERVICE}/Stream")(b"x", timeout=5)) == [b"a", b"b"]
    # The server sends the stream's status once the generator has ended, and so recorded it.
    assert calls(registry, "Stream", "OK") == 1


def watch_ends(registry: CollectorRegistry, code: str) -> float:
    return registry.get_sample_value("bazaar_grpc_server_calls_total",
                                     {"service": "grpc.health.v1.Health", "method": "Watch", "code": code}) or 0.0


def test_a_watch_is_recorded_as_its_caller_ended_it(served):
    channel, registry = served
    stub = health_pb2_grpc.HealthStub(channel)
    timed_out = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=0.2)
    assert next(timed_out).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as ended:
        next(timed_out)
    assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    cancelled = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert next(cancelled).status == health_pb2.HealthCheckResponse.SERVING
    cancelled.cancel()
    # The server records each end once it learns of it.
    wait_for(lambda: (watch_ends(registry, "DEADLINE_EXCEEDED"), watch_ends(registry, "CANCELLED")) == (1, 1),
             deadline=5.0, what="both watch ends recorded")
    assert watch_ends(registry, "OK") == 0


def test_the_insecure_transport_has_only_the_observer():
    registry = CollectorRegistry()
    observer = GrpcServerMetrics(registry).interceptor()
    assert INSECURE.observed(observer).interceptors == [observer] and INSECURE.interceptors == []


class AnswersAnything(grpc.ServerInterceptor):
    """A catch-all handler for names nobody serves: were one ever installed, every made-up
    method would reach the observer with a handler."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        return continuation(details) or grpc.unary_unary_rpc_method_handler(ok)


def test_past_the_cap_new_methods_share_one_label_set():
    registry = CollectorRegistry()
    metrics = GrpcServerMetrics(registry, max_methods=3)
    server = grpc.server(ThreadPoolExecutor(max_workers=2),
                         interceptors=[metrics.interceptor(), AnswersAnything()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        assert {call(channel, f"M{i}") for i in range(10)} == {grpc.StatusCode.OK}
        assert call(channel, "M0") == grpc.StatusCode.OK
    finally:
        channel.close()
        server.stop(None).wait(5)
    assert [calls(registry, f"M{i}", "OK") for i in range(4)] == [2, 1, 1, 0]
    assert registry.get_sample_value("bazaar_grpc_server_calls_total",
                                     {"service": "other", "method": "other", "code": "OK"}) == 7
    labelled = {s.labels["method"] for f in registry.collect() for s in f.samples if "method" in s.labels}
    assert labelled == {"M0", "M1", "M2", "other"}
    assert len(metrics._calls._children) == 4
