"""Every process's GET /metrics on a real cluster: it parses, and the trades placed through the
front end move the trade counters, the leader's commit point and the catalog's."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
from contextlib import ExitStack, closing
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bazaar.metrics.server import METRICS_DESCRIPTORS
from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration

TRADES = (("tesla", 3, "buy"), ("ford", 2, "sell"), ("nike", 1, "buy"), ("tesla", 1, "sell"), ("amc", 4, "buy"))


def scrape(cluster: Cluster, name: str) -> dict[tuple[str, frozenset], float]:
    """Process `name`'s samples: (sample name, its labels) -> value."""
    with closing(http.client.HTTPConnection("127.0.0.1", cluster.metrics_ports[name], timeout=10)) as conn:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read().decode()
    assert response.status == 200, body[:500]
    assert response.getheader("Content-Type", "").startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_every_process_serves_metrics_that_move_with_the_trades(cluster: Cluster) -> None:
    names = ["catalog", "order-1", "order-2", "order-3", "frontend"]
    before = {name: wait_for(lambda name=name: scrape(cluster, name), what=f"{name}'s metrics") for name in names}
    for name in names:
        assert sample(before[name], "process_cpu_seconds_total") is not None, name
    leader = f"order-{cluster.leader_id()}"
    # Chosen, the leader may still be taking over: its leader entry commits soon after.
    def committed_index(name: str) -> float:
        index = sample(scrape(cluster, name), "bazaar_replica_committed_index")
        return -1 if index is None else index

    wait_for(lambda: committed_index(leader) >= 0, deadline=10, what="the leader entry to commit")
    committed = committed_index(leader)

    numbers = []
    for stock, quantity, kind in TRADES:
        r = cluster.post_order(stock, quantity, kind)
        assert r.status == 200, r
        numbers.append(r.json["data"]["transaction_number"])
    assert cluster.post_order("tesla", 10**6, "buy").status == 400  # refused: not enough stock
    last = max(numbers)

    front = scrape(cluster, "frontend")
    assert sample(front, "bazaar_frontend_trades_total", outcome="executed") == len(TRADES)
    assert sample(front, "bazaar_frontend_trades_total", outcome="not_enough_stock") == 1
    assert sample(front, "bazaar_http_requests_total", route="/orders", method="POST", status="200") == len(TRADES)
    assert sample(front, "bazaar_http_requests_total", route="/orders", method="POST", status="400") == 1
    assert sample(front, "bazaar_http_request_duration_seconds_count", route="/orders", method="POST") == len(TRADES) + 1
    assert sample(front, "bazaar_leader_selections_total", cause="start") >= 1
    assert sample(front, "bazaar_frontend_leader_replica") == int(leader.split("-")[1])

    lead = scrape(cluster, leader)
    assert sample(lead, "bazaar_replica_role", role="leader") == 1
    assert sample(lead, "bazaar_replica_trades_total", outcome="ok") == len(TRADES)
    assert sample(lead, "bazaar_replica_trades_total", outcome="not_enough_stock") == 1
    # Each trade and the refusal is one more log entry, committed before it was answered.
    assert sample(lead, "bazaar_replica_committed_index") >= committed + len(TRADES) + 1
    assert sample(lead, "bazaar_replica_commit_latency_seconds_count") == len(TRADES) + 1
    assert sample(lead, "bazaar_grpc_server_calls_total", service="bazaar.v1.OrderService", method="RequestBatch",
                  code="OK") >= 1
    assert sample(lead, "bazaar_group_commit_batch_size_count") >= 1
    for follower in {"1", "2", "3"} - {leader.split("-")[1]}:
        # A majority is the leader and one follower: the other may still be finishing its rejoin.
        wait_for(lambda f=follower: sample(scrape(cluster, leader), "bazaar_replica_follower_lag_entries",
                                           follower=f) == 0, deadline=10, what=f"replica {follower} to match")
        wait_for(lambda f=follower: sample(scrape(cluster, f"order-{f}"), "bazaar_replica_role", role="follower") == 1,
                 deadline=10, what=f"replica {follower} to say it follows")

    # The catalog learns the committed trades afterwards, and the leader hears that it did.
    wait_for(lambda: sample(scrape(cluster, "catalog"), "bazaar_catalog_applied_through") == last,
             deadline=10, what="the catalog to apply every trade")
    wait_for(lambda: sample(scrape(cluster, leader), "bazaar_catalog_lag_trades") == 0,
             deadline=10, what="the leader to hear the catalog applied them")
    catalog = scrape(cluster, "catalog")
    assert sample(catalog, "bazaar_grpc_server_calls_total", service="bazaar.v1.CatalogService",
                  method="TradeBatch", code="OK") >= 1
    # Followers learn the commit point with the leader's next batch or heartbeat.
    top = committed_index(leader)
    for follower in {"order-1", "order-2", "order-3"} - {leader}:
        wait_for(lambda f=follower: committed_index(f) >= top, deadline=10, what=f"{follower} to learn the commit point")
    excerpt(cluster, names)


def excerpt(cluster: Cluster, names: list[str]) -> None:
    """A few lines of each process's /metrics, shown with `pytest -s` (for the docs)."""
    for name in names:
        with closing(http.client.HTTPConnection("127.0.0.1", cluster.metrics_ports[name], timeout=10)) as conn:
            conn.request("GET", "/metrics")
            lines: Any = conn.getresponse().read().decode().splitlines()
        print(f"--- {name}")
        print("\n".join(line for line in lines if line.startswith("bazaar_") and "_bucket" not in line))


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def metrics_status(cluster: Cluster, name: str) -> int | None:
    """The status of a GET /metrics on a new connection; None when the connection failed."""
    try:
        with closing(http.client.HTTPConnection("127.0.0.1", cluster.metrics_ports[name], timeout=5)) as conn:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            response.read()
            return response.status
    except (OSError, http.client.HTTPException):
        return None


def test_connections_to_the_metrics_port_cannot_take_the_front_ends_descriptors(cluster: Cluster) -> None:
    """Requests that never end, on many more connections than the metrics listener keeps,
    while the front end may open only a few descriptors more than it holds: its public port
    and its metrics still answer, and the connections it kept are cut at the read deadline."""
    pid = cluster.processes["frontend"].pid
    assert wait_for(lambda: metrics_status(cluster, "frontend") == 200, what="the front end's metrics")
    before = descriptors(pid)
    room = before + METRICS_DESCRIPTORS + 40
    subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={room}:{room}"], check=True)
    connected = 0
    with ExitStack() as held:
        for _ in range(300):
            try:
                s = held.enter_context(closing(socket.create_connection(
                    ("127.0.0.1", cluster.metrics_ports["frontend"]), timeout=5)))
                connected += 1
                s.sendall(b"GET /metr")  # a request that never ends
            except OSError:
                pass  # refused and closed already
        assert connected >= 200
        # Those past the caps are answered 503 and closed; the few kept hold no more than
        # the listener's share of descriptors.
        wait_for(lambda: descriptors(pid) <= before + METRICS_DESCRIPTORS, deadline=4,
                 what="the refused connections to be closed")
        assert cluster.request("GET", "/healthz").status == 200
        # The kept ones are cut at the 5 s read deadline, and a scrape is served again.
        wait_for(lambda: metrics_status(cluster, "frontend") == 200, deadline=15,
                 what="a scrape past the held connections")
