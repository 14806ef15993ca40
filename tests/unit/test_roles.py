"""Who may call what (bazaar.rpc.roles), and the names certificates carry (bazaar.tls.identity),
as decisions on fake calls: no socket."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from bazaar.config import Config
from bazaar.rpc.roles import POLICY, RoleInterceptor
from bazaar.tls.identity import Identity, Role, identity_of
from bazaar.v1 import catalog_pb2, order_pb2

CONFIG = Config()


class Aborted(Exception):
    pass


class Context:
    def __init__(self, name: str | None) -> None:
        self._auth = {} if name is None else {"x509_common_name": [name.encode()], "transport_security_type": [b"ssl"]}
        self.code: Any = None

    def auth_context(self) -> dict:
        return self._auth

    def abort(self, code: Any, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


def call(method: str, request: Any, caller: str | None, streaming: bool = False) -> Any:
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


def test_anyone_of_the_cluster_may_look_and_check_health():
    for caller in ("frontend", "order-1", "operator"):
        assert call(ORDER + "Describe", order_pb2.DescribeRequest(), caller) == "answered"
    assert call(ORDER + "Describe", order_pb2.DescribeRequest(), None) is grpc.StatusCode.PERMISSION_DENIED
    assert call("/grpc.health.v1.Health/Check", None, "catalog") == "answered"


def test_a_method_nobody_granted_is_refused():
    assert call("/bazaar.v1.OrderService/Unheard", None, "order-1") is grpc.StatusCode.PERMISSION_DENIED


def test_every_rpc_of_the_protos_has_a_rule():
    from bazaar.v1 import catalog_pb2 as c, order_pb2 as o

    methods = {f"/{s.full_name}/{m.name}" for pb in (c, o) for s in pb.DESCRIPTOR.services_by_name.values()
               for m in s.methods}
    assert methods <= set(POLICY), methods - set(POLICY)
