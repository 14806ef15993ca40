"""Who may call what (bazaar.rpc.roles), and the names certificates carry (bazaar.tls.identity),
as decisions on fake calls: no socket."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import datetime

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bazaar.config import Config
from bazaar.rpc.limits import MAX_WATCHES_PER_CALLER
from bazaar.rpc.roles import POLICY, RoleInterceptor
from bazaar.tls.identity import Identity, Role, identity_of
from bazaar.v1 import catalog_pb2, order_pb2
from grpc_health.v1 import health_pb2

CONFIG = Config()


class Aborted(Exception):
    pass


def certificate(*names: str) -> bytes:
    """A PEM certificate with these common names (as the cluster's authority would sign it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in names])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class Context:
    def __init__(self, name: str | tuple[str, ...] | None) -> None:
        names = () if name is None else (name,) if isinstance(name, str) else name
        self._auth = {"x509_pem_cert": [certificate(*names)], "transport_security_type": [b"ssl"]} if names else {}
        self.code: Any = None
        self.callbacks: list[Any] = []
        self.ended = False

    def add_callback(self, callback: Any) -> bool:
        """As grpc's: False (and the callback never called) once the call has ended."""
        if self.ended:
            return False
        self.callbacks.append(callback)
        return True

    def end(self) -> None:
        for callback in self.callbacks:
            callback()

    def auth_context(self) -> dict:
        return self._auth

    def abort(self, code: Any, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


def call(method: str, request: Any, caller: Any, streaming: bool = False) -> Any:
    """Through the interceptor to a handler that records that it ran."""
    ran: list[Any] = []

    def unary(req: Any, context: Any) -> str:
        ran.append(req)
        return "answered"

    def stream(req: Any, context: Any) -> Any:
        ran.append(req)
        yield "answered"

    handler = (grpc.unary_stream_rpc_method_handler(stream) if streaming
               else grpc.unary_unary_rpc_method_handler(unary))
    wrapped = RoleInterceptor(CONFIG).intercept_service(lambda details: handler, SimpleNamespace(method=method))
    context = Context(caller)
    try:
        if streaming:
            result = list(wrapped.unary_stream(request, context))
        else:
            result = wrapped.unary_unary(request, context)
    except Aborted:
        assert not ran, "refused before the handler ran"
        return context.code
    assert ran == [request]
    return result


ORDER = "/bazaar.v1.OrderService/"


def test_names_carry_roles():
    assert identity_of("order-2") == Identity("order-2", Role.REPLICA, 2)
    assert identity_of("frontend").role is Role.FRONTEND
    assert identity_of("catalog").role is Role.CATALOG
    assert identity_of("operator").role is Role.OPERATOR
    for name in ("order-0", "order-01", "order-x", "Order-1", "frontend-evil", "", "order-1\n"):
        assert identity_of(name) is None, name


@pytest.mark.parametrize("caller", ["frontend", "operator", "catalog", None])
def test_only_replicas_replicate_and_promise(caller):
    assert call(ORDER + "Propagate", order_pb2.PropagateRequest(leader_id=3), caller) is grpc.StatusCode.PERMISSION_DENIED
    sync = order_pb2.SynchronizeRequest(epoch=5, candidate_id=3)
    assert call(ORDER + "Synchronize", sync, caller, streaming=True) is grpc.StatusCode.PERMISSION_DENIED
    fetch = order_pb2.FetchSnapshotRequest(caller=str(CONFIG.replicas[1]))
    assert call(ORDER + "FetchSnapshot", fetch, caller, streaming=True) is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("caller", ["order-1", "operator", "catalog", None])
def test_only_front_ends_place_orders_and_assign_followers(caller):
    for method, request in [("Request", order_pb2.PlaceOrderRequest()), ("RequestBatch", order_pb2.RequestBatchRequest()),
                            ("AssignFollowers", order_pb2.AssignFollowersRequest()), ("Lookup", order_pb2.LookupOrderRequest())]:
        assert call(ORDER + method, request, caller) is grpc.StatusCode.PERMISSION_DENIED, method
        assert call(ORDER + method, request, "frontend") == "answered"


def test_only_replicas_ship_trades_to_the_catalog():
    batch = catalog_pb2.TradeBatchRequest()
    for caller in ("frontend", "operator", "catalog", None):
        assert call("/bazaar.v1.CatalogService/TradeBatch", batch, caller) is grpc.StatusCode.PERMISSION_DENIED
    assert call("/bazaar.v1.CatalogService/TradeBatch", batch, "order-2") == "answered"


def test_a_replica_speaks_only_for_itself():
    assert call(ORDER + "Propagate", order_pb2.PropagateRequest(leader_id=3), "order-3") == "answered"
    assert call(ORDER + "Propagate", order_pb2.PropagateRequest(leader_id=3), "order-1") is grpc.StatusCode.PERMISSION_DENIED
    assert call(ORDER + "Propagate", order_pb2.PropagateRequest(leader_id=0), "order-1") is grpc.StatusCode.PERMISSION_DENIED
    promise = order_pb2.SynchronizeRequest(epoch=5, candidate_id=3)
    assert call(ORDER + "Synchronize", promise, "order-3", streaming=True) == ["answered"]
    assert call(ORDER + "Synchronize", promise, "order-2", streaming=True) is grpc.StatusCode.PERMISSION_DENIED
    rejoin = order_pb2.SynchronizeRequest(caller=str(CONFIG.replicas[2]))
    assert call(ORDER + "Synchronize", rejoin, "order-2", streaming=True) == ["answered"]
    assert call(ORDER + "Synchronize", rejoin, "order-1", streaming=True) is grpc.StatusCode.PERMISSION_DENIED
    assert call(ORDER + "Synchronize", order_pb2.SynchronizeRequest(), "order-1", streaming=True) == ["answered"]
    fetch = order_pb2.FetchSnapshotRequest(caller=str(CONFIG.replicas[2]))
    assert call(ORDER + "FetchSnapshot", fetch, "order-2", streaming=True) == ["answered"]
    assert call(ORDER + "FetchSnapshot", fetch, "order-1", streaming=True) is grpc.StatusCode.PERMISSION_DENIED
    assert call(ORDER + "FetchSnapshot", order_pb2.FetchSnapshotRequest(), "order-1", streaming=True) \
        is grpc.StatusCode.PERMISSION_DENIED


def test_anyone_of_the_cluster_may_look_and_check_health():
    for caller in ("frontend", "order-1", "operator"):
        assert call(ORDER + "Describe", order_pb2.DescribeRequest(), caller) == "answered"
    assert call(ORDER + "Describe", order_pb2.DescribeRequest(), None) is grpc.StatusCode.PERMISSION_DENIED
    check = health_pb2.HealthCheckRequest(service="bazaar.v1.OrderService")
    assert call("/grpc.health.v1.Health/Check", check, "catalog") == "answered"


def test_a_method_nobody_granted_is_refused():
    assert call("/bazaar.v1.OrderService/Unheard", None, "order-1") is grpc.StatusCode.PERMISSION_DENIED


def test_every_rpc_of_the_protos_has_a_rule():
    from bazaar.v1 import catalog_pb2 as c, order_pb2 as o

    methods = {f"/{s.full_name}/{m.name}" for pb in (c, o) for s in pb.DESCRIPTOR.services_by_name.values()
               for m in s.methods}
    assert methods <= set(POLICY), methods - set(POLICY)


def test_a_replica_the_configuration_does_not_list_is_nobody():
    assert call(ORDER + "Propagate", order_pb2.PropagateRequest(leader_id=7), "order-7") is grpc.StatusCode.PERMISSION_DENIED
    assert call(ORDER + "Describe", order_pb2.DescribeRequest(), "order-7") is grpc.StatusCode.PERMISSION_DENIED


def test_a_certificate_with_two_common_names_is_nobody():
    for names in (("order-1", "operator"), ("operator", "order-1")):
        assert call(ORDER + "Describe", order_pb2.DescribeRequest(), names) is grpc.StatusCode.PERMISSION_DENIED


def test_health_is_asked_only_of_the_services_there_are():
    # grpcio-health keeps every name ever watched: megabyte names would grow it for good.
    for name in ("x" * 1_000_000, "bazaar.v1.Nothing"):
        assert call("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(service=name), "frontend") \
            is grpc.StatusCode.PERMISSION_DENIED
    assert call("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(), "frontend") == "answered"


def watch(interceptor: RoleInterceptor, caller: str, ran: list, ended: bool = False) -> Context:
    def behavior(request: Any, context: Any, send_response_callback: Any = None) -> None:
        ran.append(send_response_callback)

    behavior.experimental_non_blocking = True  # type: ignore[attr-defined]
    handler = grpc.unary_stream_rpc_method_handler(behavior)
    wrapped = interceptor.intercept_service(lambda d: handler, SimpleNamespace(method="/grpc.health.v1.Health/Watch"))
    assert getattr(wrapped.unary_stream, "experimental_non_blocking", False), "a watch holds no thread"
    context = Context(caller)
    context.ended = ended
    try:
        wrapped.unary_stream(health_pb2.HealthCheckRequest(), context, "send")
    except Aborted:
        pass
    return context


def test_a_caller_holds_a_bounded_number_of_health_watches_and_they_hold_no_thread():
    interceptor, ran = RoleInterceptor(CONFIG), []
    opened = [watch(interceptor, "operator", ran) for _ in range(MAX_WATCHES_PER_CALLER)]
    assert ran == ["send"] * MAX_WATCHES_PER_CALLER, "answered through the callback"
    assert watch(interceptor, "operator", ran).code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert watch(interceptor, "frontend", ran).code is None, "others have their own share"
    opened[0].end()
    assert watch(interceptor, "operator", ran).code is None, "a closed watch gives its place back"


def peer(*names: str) -> Any:
    """A request over the internal listener whose client showed a certificate with `names`."""
    from OpenSSL import crypto

    cert = crypto.X509.from_cryptography(x509.load_pem_x509_certificate(certificate(*names)))
    return SimpleNamespace(channel=SimpleNamespace(transport=SimpleNamespace(getPeerCertificate=lambda: cert)))


def test_the_internal_listener_reads_identities_by_the_same_rules():
    from bazaar.tls.web import peer_identity

    assert peer_identity(peer("order-2"), {1, 2, 3}) == Identity("order-2", Role.REPLICA, 2)
    assert peer_identity(peer("order-7"), {1, 2, 3}) is None, "a replica the configuration does not list"
    for names in (("operator", "order-1"), ("order-1", "operator"), ()):
        assert peer_identity(peer(*names), {1, 2, 3}) is None, names
    assert peer_identity(SimpleNamespace(channel=SimpleNamespace(transport=object())), {1}) is None


def test_a_watch_that_ended_before_it_was_counted_gives_its_place_back_at_once():
    interceptor, ran = RoleInterceptor(CONFIG), []
    for _ in range(2 * MAX_WATCHES_PER_CALLER):  # each cancelled by its caller as it began
        watch(interceptor, "operator", ran, ended=True)
    assert watch(interceptor, "operator", ran).code is None


def test_front_end_names_carry_their_id_and_only_configured_ones_are_known():
    from bazaar.tls.identity import cluster_identity, frontend_name

    assert [frontend_name(i) for i in (1, 2, 12)] == ["frontend", "frontend-2", "frontend-12"]
    assert identity_of("frontend-2") == Identity("frontend-2", Role.FRONTEND, frontend_id=2)
    for name in ("frontend-1", "frontend-02", "frontend-", "frontend-x"):
        assert identity_of(name) is None, name
    assert cluster_identity(["frontend-2"], {1, 2, 3}, {1, 2}).frontend_id == 2
    assert cluster_identity(["frontend-7"], {1, 2, 3}, {1, 2}) is None, "a front end the configuration does not list"
