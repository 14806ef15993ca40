"""Idempotency-Key (docs/api.md): a retry gets the same answer and executes nothing again."""

import json
import signal

import pytest

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


def test_a_refused_key_keeps_its_refusal_after_stock_becomes_available(cluster: Cluster) -> None:
    refused = post(cluster, "too-many", "ford", 5000, "buy")
    assert refused.status == 400 and refused.json["error"]["message"] == "not enough stocks available to buy"
    assert post(cluster, "room", "ford", 5000, "sell").status == 200
    again = post(cluster, "too-many", "ford", 5000, "buy")
    assert again.status == 400 and again.json == refused.json
    assert post(cluster, "too-many", "ford", 5, "buy").status == 422  # another trade, same key
    assert cluster.stock("ford")["quantity"] == 6000
    assert [o["quantity"] for o in cluster.dump_orders(3)] == [5000]


def test_every_answer_names_its_key_and_a_generated_one_can_be_retried(cluster: Cluster) -> None:
    first = cluster.post_order("nike", 4, "buy")
    key = first.headers["Idempotency-Key"]
    assert first.status == 200 and key.startswith("fe-")
    again = post(cluster, key, "nike", 4, "buy")
    assert again.json == first.json and again.headers["Idempotency-Key"] == key
    refused = post(cluster, "mine", "no such stock", 1, "buy")
    assert refused.status == 404 and refused.headers["Idempotency-Key"] == "mine"
    assert cluster.stock("nike")["quantity"] == 996
