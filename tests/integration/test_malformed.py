"""Bad input: a 4xx with a clear message, and no change to any stock or order."""

import pytest

from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}

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
