"""Idempotency-Key (SPEC §3): a retry gets the same answer and executes nothing again."""

import json
import signal

import grpc
import pytest

from bazaar.v1 import catalog_pb2, catalog_pb2_grpc, trade_pb2
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration


def post(cluster: Cluster, key: str, name: str, quantity: int, type_: str):
    body = json.dumps({"name": name, "quantity": quantity, "type": type_})
    return cluster.request("POST", "/orders", body, {"Content-Type": "application/json", "Idempotency-Key": key})


def test_a_retry_with_the_same_key_gets_the_same_number_and_trades_once(cluster: Cluster) -> None:
    first = post(cluster, "abc-1", "ford", 5, "buy")
    again = post(cluster, "abc-1", "ford", 5, "buy")
    assert first.status == again.status == 200
    assert first.json == again.json == {"data": {"transaction_number": 0}}
    assert post(cluster, "abc-2", "ford", 5, "buy").json["data"]["transaction_number"] == 1
    assert cluster.stock("ford")["quantity"] == 990
    assert len(cluster.dump_orders(3)) == 2


def test_the_same_key_for_another_order_is_422_and_changes_nothing(cluster: Cluster) -> None:
    assert post(cluster, "k", "ford", 5, "buy").status == 200
    r = post(cluster, "k", "ford", 6, "buy")
    assert r.status == 422 and r.json["error"]["code"] == 422, r
    assert cluster.stock("ford")["quantity"] == 995
    assert cluster.get("/orders/1").status == 404


def test_a_retry_after_the_leader_died_gets_the_same_number(cluster: Cluster) -> None:
    assert post(cluster, "before-crash", "meta", 3, "sell").json["data"]["transaction_number"] == 0
    cluster.signal("order-3", signal.SIGKILL)
    again = post(cluster, "before-crash", "meta", 3, "sell")
    assert again.status == 200 and again.json["data"]["transaction_number"] == 0
    assert cluster.stock("meta")["quantity"] == 1003


def test_a_trade_a_dead_leader_made_but_never_logged_is_logged_once_on_retry(cluster: Cluster) -> None:
    """As if a leader traded on the catalog under the client's key, then died before logging:
    the retry on the new leader logs it without moving the stock a second time."""
    with grpc.insecure_channel(f"127.0.0.1:{cluster.catalog_port}") as channel:
        traded = catalog_pb2_grpc.CatalogServiceStub(channel).Trade(
            catalog_pb2.TradeStockRequest(name="intel", quantity=7, type=trade_pb2.TRADE_TYPE_BUY,
                                          trade_id="client:lost-1"),
            timeout=5,
        )
    assert traded.status == catalog_pb2.TRADE_STATUS_OK and traded.quantity == 993
    r = post(cluster, "lost-1", "intel", 7, "buy")
    assert r.status == 200 and r.json["data"]["transaction_number"] == 0
    assert cluster.stock("intel")["quantity"] == 993
    assert cluster.get("/orders/0").json["data"] == {"number": 0, "name": "intel", "type": "buy", "quantity": 7}


def test_a_trade_no_log_holds_is_logged_by_the_next_leader(cluster: Cluster) -> None:
    """As if a leader traded under a front-end key, then the leader and the front end died:
    nobody retries the key, and the next leader reconciles its log with the catalog."""
    assert post(cluster, "first", "amc", 2, "sell").json["data"]["transaction_number"] == 0
    with grpc.insecure_channel(f"127.0.0.1:{cluster.catalog_port}") as channel:
        catalog_pb2_grpc.CatalogServiceStub(channel).Trade(
            catalog_pb2.TradeStockRequest(name="intel", quantity=7, type=trade_pb2.TRADE_TYPE_BUY,
                                          trade_id="fe:orphan"),
            timeout=5,
        )
    cluster.signal("order-3", signal.SIGKILL)
    assert post(cluster, "second", "amc", 1, "sell").status == 200
    orders = cluster.dump_orders(2)
    assert {"number": 1, "name": "intel", "type": "buy", "quantity": 7} in orders
    assert len(orders) == 3
    for name in ("intel", "amc"):
        signed = sum(o["quantity"] * (1 if o["type"] == "sell" else -1) for o in orders if o["name"] == name)
        assert cluster.stock(name)["quantity"] == 1000 + signed  # the catalog agrees with the log
