"""Bad input: a 4xx with a clear message, and no change to any stock or order; internal requests
no correct peer sends: refused, and the cluster trades and restarts as before."""

from typing import Any, Callable

import grpc
import pytest

from bazaar.config import load_config
from bazaar.core.chain import GENESIS, link
from bazaar.rpc.transport import Transport, peer_names
from bazaar.tls.files import load_credentials
from bazaar.rpc.convert import record_from_proto
from bazaar.v1 import order_pb2, order_pb2_grpc, trade_pb2
from tests.integration.cluster import REPLICA_IDS, Cluster, wait_for

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
INVALID = grpc.StatusCode.INVALID_ARGUMENT

CASES = [
    ("not json", b"{name: ford", 400),
    ("bad utf-8", b'{"name": "ford\xff\xfe", "quantity": 1, "type": "buy"}', 400),
    ("a json array", b'[{"name": "ford", "quantity": 1, "type": "buy"}]', 400),
    ("a json string", b'"ford"', 400),
    ("empty body", b"", 400),
    ("missing name", b'{"quantity": 1, "type": "buy"}', 400),
    ("missing quantity", b'{"name": "ford", "type": "buy"}', 400),
    ("missing type", b'{"name": "ford", "quantity": 1}', 400),
    ("quantity as string", b'{"name": "ford", "quantity": "5", "type": "buy"}', 400),
    ("quantity as float", b'{"name": "ford", "quantity": 2.5, "type": "buy"}', 400),
    ("quantity as bool", b'{"name": "ford", "quantity": true, "type": "buy"}', 400),
    ("quantity as null", b'{"name": "ford", "quantity": null, "type": "buy"}', 400),
    ("quantity huge", b'{"name": "ford", "quantity": 100000000000000000000000, "type": "sell"}', 400),
    ("quantity negative", b'{"name": "ford", "quantity": -5, "type": "sell"}', 400),
    ("unknown type", b'{"name": "ford", "quantity": 1, "type": "short"}', 400),
    ("type as number", b'{"name": "ford", "quantity": 1, "type": 1}', 400),
    ("empty name", b'{"name": "", "quantity": 1, "type": "buy"}', 404),
    ("name as number", b'{"name": 5, "quantity": 1, "type": "buy"}', 404),
    ("very long name", b'{"name": "' + b"x" * 60_000 + b'", "quantity": 1, "type": "buy"}', 404),
    ("body over 64 KiB", b'{"name": "' + b"x" * 100_000 + b'", "quantity": 1, "type": "buy"}', 413),
]


def snapshot(cluster: Cluster) -> list:
    return [cluster.stock("ford"), cluster.get("/orders/0").status]


@pytest.mark.parametrize("label, body, status", CASES, ids=[c[0] for c in CASES])
def test_bad_orders_are_refused_and_change_nothing(shared_cluster: Cluster, label, body, status) -> None:
    cluster = shared_cluster
    before = snapshot(cluster)
    r = cluster.request("POST", "/orders", body, JSON)
    assert r.status == status, r
    message = r.json["error"]["message"]
    assert r.json["error"]["code"] == status and len(message) > 5
    assert snapshot(cluster) == before


@pytest.mark.parametrize("path", ["/orders/1.5", "/orders/99999999999999999999999", "/orders/-3",
                                  "/orders/ 1", "/orders/0x1"])
def test_bad_order_numbers_are_not_found(shared_cluster: Cluster, path) -> None:
    cluster = shared_cluster
    r = cluster.get(path.replace(" ", "%20"))
    assert r.status == 404, r
    assert r.json["error"]["message"] == "transaction not found"


@pytest.mark.parametrize("path", ["/stocks/" + "y" * 5000, "/stocks/%00", "/stocks/..%2Ftesla"])
def test_bad_stock_names_are_not_found(shared_cluster: Cluster, path) -> None:
    cluster = shared_cluster
    r = cluster.get(path)
    assert r.status == 404, r
    assert r.json["error"]["code"] == 404


@pytest.mark.parametrize("path", ["/orders/%FF", "/stocks/%FF%FE"])
def test_a_url_that_is_not_utf8_is_a_bad_request(shared_cluster: Cluster, path) -> None:
    r = shared_cluster.get(path)
    assert r.status == 400, r
    assert "UTF-8" in r.json["error"]["message"]


# ---- internal RPCs no correct peer sends, at a running cluster ----------------------------------


def refusal(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    raise AssertionError("the call was taken")


def entries_of(stub: order_pb2_grpc.OrderServiceStub) -> list[trade_pb2.LogEntry]:
    """A replica's whole log, as a plain Synchronize read gives it to any replica."""
    return [e for r in stub.Synchronize(order_pb2.SynchronizeRequest(), timeout=10) for e in r.entries]


def test_the_nastiest_internal_requests_are_refused_and_the_cluster_trades_and_restarts(cluster: Cluster) -> None:
    for _ in range(3):
        assert cluster.post_order("ford", 1, "buy").status == 200
    leader = cluster.leader_id()
    follower = next(i for i in REPLICA_IDS if i != leader)
    # Sent with the credentials whose role may make each call (a compromised leader, a
    # compromised front end): what refuses them here is their bounds, not their role.
    config = load_config(cluster.config)
    leader_transport = Transport(load_credentials(config, f"order-{leader}"), peer_names(config))
    frontend_transport = Transport(load_credentials(config, "frontend"), peer_names(config))
    channels = {i: leader_transport.dial(f"127.0.0.1:{p}", []) for i, p in cluster.replica_ports.items()}
    channels[0] = frontend_transport.dial(f"127.0.0.1:{cluster.replica_ports[leader]}", [])
    stubs = {i: order_pb2_grpc.OrderServiceStub(c) for i, c in channels.items()}
    as_frontend = stubs.pop(0)
    try:
        epoch = cluster.describe(leader).epoch
        for i in REPLICA_IDS:  # the promise that made every later takeover overflow
            request = order_pb2.SynchronizeRequest(epoch=2**63 - 1, candidate_id=leader)
            assert refusal(lambda: list(stubs[i].Synchronize(request, timeout=5))) is INVALID
        far = list(stubs[follower].Synchronize(order_pb2.SynchronizeRequest(epoch=10**18, candidate_id=leader),
                                               timeout=5))
        assert far[0].refused and len(far) == 1

        log = entries_of(stubs[follower])
        last = log[-1]
        after = {"index": last.index + 1, "epoch": epoch, "kind": trade_pb2.ENTRY_KIND_TRADE,
                 "number": last.number + 1, "name": "ford", "type": trade_pb2.TRADE_TYPE_SELL, "quantity": 1}
        forged = {  # batches that crashed all three replicas: a key held, a stock that is not there
            "a key the log holds": dict(after, key=next(e.key for e in log if e.key)),
            "an unknown stock": dict(after, name="nope", key="forged-1"),
            "a negative quantity": dict(after, quantity=-1, key="forged-2"),
        }
        for label, fields in forged.items():
            request = order_pb2.PropagateRequest(
                prev_index=last.index, prev_chain=chain_after(log), entries=[trade_pb2.LogEntry(**fields)],
                leader_last=last.index + 1, epoch=epoch, leader_commit=-1, leader_id=leader)
            assert refusal(lambda: stubs[follower].Propagate(request, timeout=5)) is INVALID, label

        tiny = order_pb2.PlaceOrderRequest(name="x", quantity=1)
        assert refusal(lambda: as_frontend.RequestBatch(
            order_pb2.RequestBatchRequest(orders=[tiny] * 340_000), timeout=5)) is grpc.StatusCode.RESOURCE_EXHAUSTED
        huge_key = order_pb2.PlaceOrderRequest(name="ford", quantity=1, type=1, idempotency_key="k" * 3_000_000)
        assert refusal(lambda: as_frontend.RequestBatch(
            order_pb2.RequestBatchRequest(orders=[huge_key]), timeout=5)) is grpc.StatusCode.RESOURCE_EXHAUSTED
        long_key = order_pb2.PlaceOrderRequest(name="ford", quantity=1, type=1, idempotency_key="k" * 129)
        assert refusal(lambda: as_frontend.RequestBatch(
            order_pb2.RequestBatchRequest(orders=[long_key]), timeout=5)) is INVALID
        assert refusal(lambda: list(stubs[leader].Synchronize(  # no replica's address, nor its own
            order_pb2.SynchronizeRequest(caller="127.0.0.1:1"), timeout=5))) is grpc.StatusCode.PERMISSION_DENIED

        unread = [stubs[leader].Synchronize(order_pb2.SynchronizeRequest()) for _ in range(80)]
        try:  # the API goes on while they are open
            assert cluster.describe(leader).role == order_pb2.REPLICA_ROLE_LEADER
            assert cluster.post_order("ford", 1, "buy").status == 200
        finally:
            for call in unread:
                call.cancel()
    finally:
        for channel in channels.values():
            channel.close()

    assert cluster.post_order("ford", 2, "sell").status == 200
    assert cluster.get("/orders/4").json["data"] == {"number": 4, "name": "ford", "type": "sell", "quantity": 2}
    for name in ("catalog", *(f"order-{i}" for i in REPLICA_IDS)):
        assert "Traceback" not in cluster.log(name), name
    assert cluster.stop_all() == []
    cluster.start_all()
    assert cluster.post_order("ford", 1, "buy").status == 200
    assert cluster.stock("ford")["quantity"] == 1000 - 3 - 1 + 2 - 1

    def identical() -> bool:
        dumps = [cluster.dump_orders(i) for i in REPLICA_IDS]
        return all(d == dumps[0] for d in dumps) and len(dumps[0]) == 6

    wait_for(identical, deadline=20, what="the three logs to be identical")


def chain_after(log: list[trade_pb2.LogEntry]) -> bytes:
    """The chain value at the log's last entry, worked out as a replica does."""
    chain = GENESIS
    for entry in log:
        chain = link(chain, record_from_proto(entry))
    return chain
