"""Operating a cluster: several front ends trading through a leader's crash, a front end
killed and added while the other trades, readiness that follows the leader's majority."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid

import pytest

from bazaar.v1 import order_pb2
from tests.integration.cluster import Cluster, wait_for
from tests.integration.test_metrics import sample, scrape

pytestmark = pytest.mark.integration

TRADES = 30  # per front end
ATTEMPTS_DEADLINE = 30.0  # seconds one trade may take, all its retries included


def trade_until_acknowledged(cluster: Cluster, frontend: str, name: str) -> int:
    """Sell one `name` as a careful client does: one key for the trade, asked again after a 504
    (outcome unknown) or a 503 (nothing executed) or no answer, until it is acknowledged."""
    key = str(uuid.uuid4())
    body = json.dumps({"name": name, "quantity": 1, "type": "sell"})
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    end = time.monotonic() + ATTEMPTS_DEADLINE
    while True:
        try:
            r = cluster.request("POST", "/orders", body, headers, timeout=10, frontend=frontend)
            if r.status == 200:
                return r.json["data"]["transaction_number"]
            assert r.status in (503, 504), r  # the documented statuses of a failover
        except OSError:
            pass  # no answer: the outcome is unknown, and the key makes asking again safe
        assert time.monotonic() < end, f"a trade through {frontend} was not acknowledged in {ATTEMPTS_DEADLINE} s"
        time.sleep(0.05)  # a client's back-off between attempts, not a synchronisation


class Traders:
    """One thread per front end, each selling `TRADES` of its own stock."""

    STOCKS = {"frontend": "nike", "frontend-2": "intel"}

    def __init__(self, cluster: Cluster, frontends: list[str]) -> None:
        self.acknowledged: dict[str, list[int]] = {f: [] for f in frontends}
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._trade, args=(cluster, f)) for f in frontends]

    def _trade(self, cluster: Cluster, frontend: str) -> None:
        try:
            for _ in range(TRADES):
                self.acknowledged[frontend].append(trade_until_acknowledged(cluster, frontend, self.STOCKS[frontend]))
        except BaseException as e:  # reported by the main thread
            self.errors.append(e)

    def __enter__(self) -> "Traders":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self.threads:
            thread.join(2 * TRADES * ATTEMPTS_DEADLINE)
        assert not any(t.is_alive() for t in self.threads) and not self.errors, self.errors

    def progressed(self, frontend: str, count: int) -> None:
        wait_for(lambda: len(self.acknowledged[frontend]) >= count or self.errors, deadline=30,
                 what=f"{count} trades through {frontend}")


def nothing_lost(cluster: Cluster, traders: Traders, frontends: list[str]) -> None:
    """Every acknowledged trade is in the log, once, as it was acknowledged, whichever front
    end is asked; and each stock moved by exactly the acknowledged trades."""
    numbers = [n for acked in traders.acknowledged.values() for n in acked]
    assert len(numbers) == len(set(numbers)) == TRADES * len(traders.acknowledged)
    for frontend, acked in traders.acknowledged.items():
        for number in acked:
            for asked in frontends:
                r = cluster.request("GET", f"/orders/{number}", frontend=asked)
                assert r.status == 200 and r.json["data"] == {
                    "number": number, "name": Traders.STOCKS[frontend], "type": "sell", "quantity": 1}, r
        stock = cluster.request("GET", f"/stocks/{Traders.STOCKS[frontend]}", frontend=frontends[0])
        assert stock.json["data"]["quantity"] == 1000 + TRADES


def test_two_front_ends_trading_through_a_leader_kill_lose_nothing(cluster_factory) -> None:
    cluster = cluster_factory(frontends=2)
    cluster.start_all()
    frontends = ["frontend", "frontend-2"]
    with Traders(cluster, frontends) as traders:
        for frontend in frontends:
            traders.progressed(frontend, 5)
        cluster.signal("order-3", signal.SIGKILL)
    nothing_lost(cluster, traders, frontends)
    leaders = {cluster.request("GET", "/leader", frontend=f).json["data"]["leader"] for f in frontends}
    assert leaders == {f"127.0.0.1:{cluster.replica_ports[2]}"}, "both front ends use the same new leader"


def test_a_front_end_killed_and_added_while_the_other_trades(cluster_factory) -> None:
    cluster = cluster_factory(frontends=2)
    cluster.start_all()
    epoch = cluster.describe(3).leader_epoch
    with Traders(cluster, ["frontend"]) as traders:
        traders.progressed("frontend", 5)
        cluster.signal("frontend-2", signal.SIGKILL)
        traders.progressed("frontend", 15)
        cluster.start("frontend-2")
    wait_for(lambda: cluster.request("GET", "/readyz", frontend="frontend-2").status == 200, deadline=10,
             what="the added front end to be ready")
    assert trade_until_acknowledged(cluster, "frontend-2", "ford") == TRADES
    nothing_lost(cluster, traders, ["frontend", "frontend-2"])
    # The added front end adopted the leader and assigned none. (The leader's epoch may still
    # move if a loaded machine stalls its followers' answers for a lease: it stands again on
    # its own, which is no doing of the front end's.)
    results = scrape(cluster, "frontend-2")
    assert sample(results, "bazaar_leader_selection_results_total", result="adopted") >= 1
    assert sample(results, "bazaar_leader_selection_results_total", result="assigned") == 0
    described = cluster.describe(3)
    assert described.role == order_pb2.REPLICA_ROLE_LEADER
    if described.leader_epoch != epoch:
        assert "no majority within the lease" in cluster.log("order-3"), "a new epoch with no lease lost"


def test_readyz_is_503_while_the_leader_has_no_majority_and_200_again_after(cluster: Cluster) -> None:
    def readyz():
        r = cluster.get("/readyz")
        return r.status, r.json

    assert readyz() == (200, {"data": {"ready": True, "leader": 3, "missing": []}})
    for follower in ("order-1", "order-2"):
        cluster.signal(follower, signal.SIGSTOP)
    try:
        status, body = wait_for(lambda: (r := readyz())[0] == 503 and r, deadline=10,
                                what="/readyz to say the leader has no majority")
        assert body["error"]["missing"] == ["leader"] and "no order leader with a majority" in body["error"]["message"]
    finally:
        for follower in ("order-1", "order-2"):
            cluster.signal(follower, signal.SIGCONT)
    status, body = wait_for(lambda: (r := readyz())[0] == 200 and r, deadline=10, what="/readyz to be 200 again")
    assert body["data"]["ready"] is True and body["data"]["leader"] in (1, 2, 3)


def test_json_logs_are_one_object_per_line_carrying_the_events_fields(cluster_factory) -> None:
    cluster = cluster_factory(log_format="json")
    cluster.start_all()
    assert trade_until_acknowledged(cluster, "frontend", "amc") == 0
    cluster.signal("order-3", signal.SIGKILL)  # a failover: warnings with fields
    assert trade_until_acknowledged(cluster, "frontend", "amc") == 1
    cluster.stop_all()
    records = {name: [json.loads(line) for line in cluster.log(name).splitlines()]
               for name in ["catalog", "order-1", "order-2", "order-3", "frontend"]}
    for name, lines in records.items():
        assert lines, name
        assert all({"time", "level", "namespace", "message"} <= set(r) for r in lines), name
    leading = [r for r in records["order-2"] if r["message"].startswith("leading in epoch")]
    assert leading and isinstance(leading[0].get("epoch"), int), records["order-2"][-5:]
    failed = [r for r in records["frontend"] if r["level"] == "warn" and r["message"].startswith("order leader 3 failed")]
    assert failed and failed[0]["id"] == 3 and failed[0]["namespace"] == "bazaar.frontend.leader"


def test_a_front_end_frozen_while_a_push_is_due_drops_its_entry_once_it_is_back(cluster_factory) -> None:
    from tests.integration.test_metrics import sample, scrape

    cluster = cluster_factory(frontends=2)
    cluster.start_all()

    def quantity(frontend: str) -> int:
        r = cluster.request("GET", "/stocks/ford", frontend=frontend)
        assert r.status == 200, r
        return r.json["data"]["quantity"]

    before = quantity("frontend-2")  # now cached there
    cluster.signal("frontend-2", signal.SIGSTOP)
    try:
        assert trade_until_acknowledged(cluster, "frontend", "ford") == 0
        wait_for(lambda: (sample(scrape(cluster, "order-3"), "bazaar_invalidation_push_failures_total",
                                 frontend="2") or 0) >= 1,
                 deadline=15, what="the leader's push to the frozen front end to fail")
    finally:
        cluster.signal("frontend-2", signal.SIGCONT)
    assert quantity("frontend") == before + 1
    wait_for(lambda: quantity("frontend-2") == before + 1, deadline=10,
             what="the thawed front end to take the push it missed")
