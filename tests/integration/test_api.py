"""The HTTP API (docs/api.md) against a real cluster: every success and error case, and the cache."""

import json
import signal

import pytest

from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration


def error(r, status: int) -> str:
    assert r.status == status, r
    assert r.headers.get("Content-Type", "").startswith("application/json")
    body = r.json
    assert body["error"]["code"] == status
    return body["error"]["message"]


def test_stock_lookup(cluster: Cluster) -> None:
    r = cluster.get("/stocks/tesla")
    assert r.status == 200
    assert r.json == {"data": {"name": "tesla", "price": 183.26, "quantity": 1000}}
    assert error(cluster.get("/stocks/imagine%20company"), 404) == "stock not found"


def test_trades_and_order_lookup(cluster: Cluster) -> None:
    r = cluster.post_order("ford", 10, "buy")
    assert r.status == 200 and r.json == {"data": {"transaction_number": 0}}
    r = cluster.post_order("ford", 4, "sell")
    assert r.json == {"data": {"transaction_number": 1}}
    assert cluster.stock("ford")["quantity"] == 994
    r = cluster.get("/orders/0")
    assert r.status == 200
    assert r.json == {"data": {"number": 0, "name": "ford", "type": "buy", "quantity": 10}}
    assert cluster.get("/orders/1").json["data"]["type"] == "sell"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"name": "nothing", "quantity": 1, "type": "buy"}, 404, "stock not found"),
        ({"name": "nothing", "quantity": -1, "type": "hold"}, 404, "stock not found"),
        ({"name": "ford", "quantity": 1, "type": "hold"}, 400, "invalid request type"),
        ({"name": "ford", "quantity": -1, "type": "hold"}, 400, "invalid request type"),
        ({"name": "ford", "quantity": 0, "type": "buy"}, 400, "invalid number of stocks"),
        ({"name": "ford", "quantity": 1001, "type": "buy"}, 400, "not enough stocks available to buy"),
    ],
)
def test_order_errors_in_the_seeds_order(cluster: Cluster, body, status, message) -> None:
    r = cluster.request("POST", "/orders", json.dumps(body), {"Content-Type": "application/json"})
    assert error(r, status) == message
    assert cluster.stock("ford")["quantity"] == 1000
    assert error(cluster.get("/orders/0"), 404) == "transaction not found"


def test_unknown_orders_paths_and_methods(cluster: Cluster) -> None:
    assert error(cluster.get("/orders/0"), 404) == "transaction not found"
    assert error(cluster.get("/orders/-1"), 404) == "transaction not found"
    assert error(cluster.get("/orders/abc"), 404) == "transaction not found"
    error(cluster.get("/nowhere"), 404)
    error(cluster.request("DELETE", "/stocks/tesla"), 405)
    error(cluster.request("GET", "/orders"), 405)


def test_internal_endpoints(cluster: Cluster) -> None:
    leader = cluster.get("/leader").json["data"]["leader"]
    assert leader == f"127.0.0.1:{cluster.replica_ports[3]}"  # highest id first
    assert cluster.get("/cache/tesla").status == 404, "not on the public port"
    r = cluster.internal_get("/cache/tesla", as_name="order-3")
    assert r.status == 200 and r.json == {"data": {}}
    assert cluster.internal_get("/cache/tesla", as_name="operator").status == 403, "replicas only"


def test_a_cached_stock_is_served_without_the_catalog_and_a_trade_refreshes_it(cluster: Cluster) -> None:
    assert cluster.stock("apple")["quantity"] == 1000
    cluster.signal("catalog", signal.SIGSTOP)  # frozen: only the cache can answer now
    try:
        assert cluster.stock("apple")["quantity"] == 1000
    finally:
        cluster.signal("catalog", signal.SIGCONT)
    assert cluster.post_order("apple", 7, "buy").status == 200
    assert cluster.stock("apple")["quantity"] == 993


def test_without_a_cache_every_lookup_reaches_the_catalog(cluster_factory) -> None:
    cluster = cluster_factory(cache=False)
    cluster.start_all()
    assert cluster.stock("nike")["quantity"] == 1000
    cluster.signal("catalog", signal.SIGKILL)
    assert error(cluster.get("/stocks/nike"), 503)


def test_trades_do_not_need_the_catalog_but_its_lookups_do(cluster: Cluster) -> None:
    cluster.signal("catalog", signal.SIGKILL)
    assert cluster.post_order("ford", 1, "buy").json["data"]["transaction_number"] == 0
    assert cluster.get("/orders/0").json["data"] == {"number": 0, "name": "ford", "type": "buy", "quantity": 1}
    assert error(cluster.get("/stocks/ford"), 503) == "the catalog is unavailable"
    cluster.start("catalog")
    answered = wait_for(lambda: (r := cluster.get("/stocks/ford")).status == 200 and r,
                        what="the restarted catalog to answer")
    assert answered.json["data"]["quantity"] == 999


def test_the_cache_report_follows_real_lookups_and_trades(cluster: Cluster) -> None:
    for _ in range(2):
        cluster.stock("amazon")
    assert cluster.post_order("amazon", 1, "buy").status == 200
    assert set(cluster.get("/cache").json["data"]) == {"enabled", "capacity", "hits", "misses", "evictions"}
    report = cluster.internal_get("/cache").json["data"]
    assert report["enabled"] and report["hits"] >= 1
    kinds = [(e["kind"], e["name"]) for e in report["events"]]
    assert kinds[:2] == [("insert", "amazon"), ("invalidate", "amazon")]
    assert all(e["time"] > 1e9 for e in report["events"])  # wall-clock seconds


def test_every_process_stops_on_sigterm_after_trading(cluster: Cluster) -> None:
    # Peers hold gRPC streams open to each other; none of them may keep a server from stopping.
    assert cluster.post_order("ford", 1, "buy").status == 200
    assert cluster.get("/stocks/ford").status == 200
    assert cluster.stop_all() == []
