"""Only the cluster speaks to the cluster (docs/security.md), against real processes: every
internal RPC called with no certificate, a certificate of another authority, or one of the
wrong role is refused, and nothing changes; the attacks that once rewrote history are among
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import grpc
import pytest

from bazaar.config import load_config
from bazaar.rpc.transport import Transport, peer_names
from bazaar.tls.certs import make_certificates
from bazaar.tls.files import Credentials, load_credentials
from bazaar.v1 import catalog_pb2, catalog_pb2_grpc, order_pb2, order_pb2_grpc, trade_pb2
from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration

FORGED = trade_pb2.LogEntry(index=0, epoch=99, kind=trade_pb2.ENTRY_KIND_TRADE, number=0, name="tesla",
                            type=trade_pb2.TRADE_TYPE_BUY, quantity=1, key="forged")
ORDER_CALLS: list[tuple[str, Any, bool]] = [
    ("Propagate", order_pb2.PropagateRequest(prev_index=-1, entries=[FORGED], leader_last=0, epoch=99, leader_id=3), False),
    ("Propagate", order_pb2.PropagateRequest(prev_index=-1, leader_last=-1, epoch=99, leader_id=3), False),
    ("Synchronize", order_pb2.SynchronizeRequest(epoch=2**62, candidate_id=3), True),
    ("AssignFollowers", order_pb2.AssignFollowersRequest(), False),
    ("Request", order_pb2.PlaceOrderRequest(name="tesla", quantity=1, type=trade_pb2.TRADE_TYPE_BUY, idempotency_key="x"), False),
    ("RequestBatch", order_pb2.RequestBatchRequest(), False),
    ("Lookup", order_pb2.LookupOrderRequest(number=0), False),
]
CATALOG_CALLS: list[tuple[str, Any]] = [
    ("TradeBatch", catalog_pb2.TradeBatchRequest(trades=[catalog_pb2.TradeStockRequest(
        number=0, name="tesla", quantity=1, type=trade_pb2.TRADE_TYPE_SELL)])),
    ("Lookup", catalog_pb2.LookupStockRequest(name="tesla")),
]


def try_call(channel: grpc.Channel, stub_class: Any, method: str, request: Any, streaming: bool = False) -> Any:
    try:
        answer = getattr(stub_class(channel), method)(request, timeout=3)
        return list(answer) if streaming else answer
    except grpc.RpcError as e:
        return e.code()


def state(cluster: Cluster) -> tuple:
    """What an attack could have changed: each replica's epoch and log, the catalog's stock."""
    described = [cluster.describe(i) for i in (1, 2, 3)]
    return ([(d.epoch, d.last_index, d.committed_index) for d in described],
            [cluster.dump_orders(i) for i in (1, 2, 3)], cluster.stock("tesla"))


DENIED, NO_HANDSHAKE = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE


def channels(cluster: Cluster, tmp_path: Path) -> dict[str, tuple[Callable[[str], grpc.Channel], grpc.StatusCode]]:
    """Ways to dial a process at an address, none of them allowed to act, and how each is
    refused: at the TLS handshake, or by the role check."""
    config = load_config(cluster.config)
    names = peer_names(config)
    stranger_dir = tmp_path / "another-ca"
    make_certificates(stranger_dir, ["order-3", "frontend"])  # the right names, another authority
    own = load_credentials(config, "operator")
    assert own is not None
    stranger = Credentials("frontend", (stranger_dir / "ca.pem").read_bytes(),
                           (stranger_dir / "frontend.pem").read_bytes(), (stranger_dir / "frontend.key").read_bytes())
    trusting_stranger = Credentials("frontend", own.authority, stranger.certificate, stranger.key)
    no_client_cert = grpc.ssl_channel_credentials(root_certificates=own.authority)

    def anonymous(address: str) -> grpc.Channel:
        return grpc.secure_channel(address, no_client_cert, options=[
            ("grpc.ssl_target_name_override", f"{names[address]}.bazaar")])

    return {
        "plaintext": (lambda address: grpc.insecure_channel(address), NO_HANDSHAKE),
        "no client certificate": (anonymous, NO_HANDSHAKE),
        "another authority's certificate": (
            lambda address: Transport(trusting_stranger, names).dial(address, []), NO_HANDSHAKE),
        "the operator's certificate": (lambda address: Transport(own, names).dial(address, []), DENIED),
        "replica 1 as leader 3 or candidate 3": (
            lambda address: Transport(load_credentials(config, "order-1"), names).dial(address, []), DENIED),
    }


def test_only_the_cluster_may_call_the_cluster_and_refusals_change_nothing(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.post_order("tesla", 2, "buy").status == 200
    # The followers learn the trade's commit with the leader's next heartbeat: compare from then.
    def settled() -> tuple | None:
        now = state(cluster)
        return now if len(set(now[0])) == 1 else None

    before = wait_for(settled, deadline=5, what="every replica to know the trade committed")
    config = load_config(cluster.config)
    for how, (dial, expected) in channels(cluster, tmp_path).items():
        for replica_id in (1, 2):
            with dial(str(config.replicas[replica_id])) as channel:
                for method, request, streaming in ORDER_CALLS:
                    if how.startswith("replica 1") and method not in ("Propagate", "Synchronize"):
                        continue  # a replica may not call these either, but that is the operator's case
                    outcome = try_call(channel, order_pb2_grpc.OrderServiceStub, method, request, streaming)
                    assert outcome == expected, (how, replica_id, method, outcome)
        if how.startswith("replica 1"):
            continue  # any replica may ship committed trades (the same on every replica)
        with dial(str(config.catalog)) as channel:
            for method, request in CATALOG_CALLS:
                outcome = try_call(channel, catalog_pb2_grpc.CatalogServiceStub, method, request)
                assert outcome == expected, (how, method, outcome)
    assert state(cluster) == before, "nothing changed"
    assert cluster.post_order("tesla", 1, "buy").json["data"]["transaction_number"] == 1, "and trading goes on"


def test_the_internal_listener_takes_only_cluster_certificates(cluster: Cluster, tmp_path: Path) -> None:
    import ssl
    import urllib.request

    config = load_config(cluster.config)
    url = f"https://{config.frontends[1].internal}/cache/tesla"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # an outsider trusting anything
    with pytest.raises(OSError):  # the handshake fails: it has no certificate to show
        urllib.request.urlopen(url, context=context, timeout=5)
    assert cluster.internal_get("/cache/tesla", as_name="frontend").status == 403
    assert cluster.internal_get("/cache/tesla", as_name="order-2").status == 200


def test_health_watches_hold_no_thread_and_are_bounded_per_caller(cluster: Cluster) -> None:
    """A caller with the least of certificates once halted a replica with 16 watches: each
    held one of its handler threads."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    config = load_config(cluster.config)
    address = str(config.replicas[3])
    with Transport(load_credentials(config, "operator"), peer_names(config)).dial(address, []) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watches = [health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30) for _ in range(24)]
        try:
            outcomes = []
            for w in watches:  # a watch taken gets the current status at once
                try:
                    outcomes.append(next(w).status == health_pb2.HealthCheckResponse.SERVING)
                except grpc.RpcError as e:
                    outcomes.append(e.code())
            assert outcomes.count(True) == 8 and outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 16, outcomes
            # Another caller's share besides: with the peers' own holds, more watches than the
            # server has handler threads (16), and it still answers.
            as_frontend = Transport(load_credentials(config, "frontend"), peer_names(config)).dial(address, [])
            watches += [health_pb2_grpc.HealthStub(as_frontend).Watch(health_pb2.HealthCheckRequest(), timeout=30)
                        for _ in range(8)]
            taken = 0
            for w in watches[-8:]:  # the front end's own channel holds one of its share already
                try:
                    taken += next(w).status == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError as e:
                    assert e.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert taken >= 7 - 1
            described = order_pb2_grpc.OrderServiceStub(channel).Describe(order_pb2.DescribeRequest(), timeout=2)
            assert described.replica_id == 3, "the replica still answers"
            assert cluster.post_order("tesla", 1, "buy").status == 200
            unknown = health_pb2.HealthCheckRequest(service="x" * 100_000)
            assert try_call(channel, health_pb2_grpc.HealthStub, "Check", unknown) is DENIED
        finally:
            for w in watches:
                w.cancel()
            if "as_frontend" in locals():
                as_frontend.close()
