"""The log decides, the catalog learns: trades go on without the catalog, the catalog catches
up to exactly what the log says, reads never show an uncommitted order, and a client that got a
200 sees its trade in the next GET /stocks."""

import json
import signal

import pytest

from bazaar.catalog.store import read_applied, read_stocks
from bazaar.core.stock import DEFAULT_STOCKS
from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration


def trade(cluster: Cluster, name: str, quantity: int, type_: str) -> int:
    r = cluster.post_order(name, quantity, type_)
    assert r.status == 200, r
    return r.json["data"]["transaction_number"]


def retry(cluster: Cluster, key: str, name: str, quantity: int, type_: str):
    body = json.dumps({"name": name, "quantity": quantity, "type": type_})
    return cluster.request("POST", "/orders", body, {"Content-Type": "application/json", "Idempotency-Key": key})


def expected_table(orders: list[dict]) -> dict[str, tuple[int, int]]:
    table = {s.name: (s.quantity, s.volume) for s in DEFAULT_STOCKS}
    for o in orders:
        quantity, volume = table[o["name"]]
        table[o["name"]] = (quantity + (o["quantity"] if o["type"] == "sell" else -o["quantity"]),
                            volume + o["quantity"])
    return table


def assert_catalog_is_the_log(cluster: Cluster, replica: int = 3) -> None:
    """Once the catalog has applied the whole log, its table is the initial one plus the log."""
    orders = cluster.dump_orders(replica)
    catalog = cluster.root / "data" / "catalog"
    wait_for(lambda: read_applied(catalog) == len(orders) - 1, what=f"the catalog to apply {len(orders)} trades")
    assert {s.name: (s.quantity, s.volume) for s in read_stocks(catalog)} == expected_table(orders)


def test_trades_go_on_while_the_catalog_is_frozen_and_it_catches_up(cluster: Cluster) -> None:
    trade(cluster, "tesla", 1, "buy")
    cluster.signal("catalog", signal.SIGSTOP)
    try:
        numbers = [trade(cluster, "tesla", q, "buy") for q in (2, 3, 4)]
    finally:
        cluster.signal("catalog", signal.SIGCONT)
    assert numbers == [1, 2, 3]
    assert cluster.stock("tesla")["quantity"] == 1000 - 10  # read your writes, after the thaw
    assert_catalog_is_the_log(cluster)


def test_trades_go_on_while_the_catalog_is_down_and_a_restarted_one_shows_them(cluster: Cluster) -> None:
    trade(cluster, "ford", 5, "sell")
    assert cluster.stock("ford")["quantity"] == 1005  # now cached
    cluster.signal("catalog", signal.SIGKILL)
    numbers = [trade(cluster, "ford", 1, "buy") for _ in range(5)]
    assert numbers == [1, 2, 3, 4, 5]
    assert cluster.get("/stocks/ford").status == 503  # it cannot show them yet, so it does not pretend
    cluster.start("catalog")
    # The lookup names the trades this front end acknowledged: the catalog answers once it
    # has learned them from the leader, never with what it held before.
    first = wait_for(lambda: (r := cluster.get("/stocks/ford")).status == 200 and r,
                     what="the restarted catalog to answer")
    assert first.json["data"]["quantity"] == 1000
    assert_catalog_is_the_log(cluster)


def test_an_order_no_majority_holds_is_not_readable(cluster: Cluster) -> None:
    trade(cluster, "amc", 1, "buy")
    for follower in ("order-1", "order-2"):
        cluster.signal(follower, signal.SIGSTOP)
    try:
        r = cluster.post_order("amc", 2, "buy")
        assert r.status in (503, 504), r
        # The leader holds the trade (504) or nothing (503): either way order 1 is not committed,
        # so it is not found, or (once the leader has stepped down for want of a majority)
        # there is no leader to ask.
        assert cluster.get("/orders/1").status in (404, 503)
    finally:
        for follower in ("order-1", "order-2"):
            cluster.signal(follower, signal.SIGCONT)
    key = r.headers["Idempotency-Key"]
    again = wait_for(lambda: (a := retry(cluster, key, "amc", 2, "buy")).status < 500 and a,
                     what="a definite answer for the trade left in doubt")
    # Logged and now committed (504), or never logged and executed now (503): number 1 either way.
    assert again.status == 200 and again.json["data"]["transaction_number"] == 1
    assert cluster.get("/orders/1").json["data"] == {"number": 1, "name": "amc", "type": "buy", "quantity": 2}
    assert_catalog_is_the_log(cluster)


def test_a_leader_kill_during_a_catalog_outage_loses_nothing(cluster: Cluster) -> None:
    trade(cluster, "meta", 1, "buy")
    cluster.signal("catalog", signal.SIGSTOP)
    try:
        trade(cluster, "meta", 2, "buy")
        cluster.signal("order-3", signal.SIGKILL)
        assert trade(cluster, "meta", 3, "buy") == 2
    finally:
        cluster.signal("catalog", signal.SIGCONT)
    assert cluster.stock("meta")["quantity"] == 1000 - 6
    assert_catalog_is_the_log(cluster, replica=2)
