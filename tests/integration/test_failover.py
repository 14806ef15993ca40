"""Crashes: the leader killed under the client's feet, a replica rejoining, a full restart."""

import json
import signal
import subprocess
import sys

import pytest

from bazaar.order.store import read_entries
from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration


def trade(cluster: Cluster, name: str, quantity: int, type_: str) -> int:
    r = cluster.post_order(name, quantity, type_)
    assert r.status == 200, r
    return r.json["data"]["transaction_number"]


def assert_dumps_identical(cluster: Cluster, expected_count: int) -> None:
    def identical():
        dumps = [cluster.dump_orders(i) for i in (1, 2, 3)]
        return dumps if all(d == dumps[0] for d in dumps) and len(dumps[0]) == expected_count else None

    dumps = wait_for(identical, deadline=20, what="the three replicas' logs to be identical")
    assert [o["number"] for o in dumps[0]] == list(range(expected_count))


def test_killing_the_leader_is_invisible_to_clients(cluster: Cluster) -> None:
    numbers = [trade(cluster, "meta", 2, "buy") for _ in range(5)]
    assert cluster.leader_id() == 3
    cluster.signal("order-3", signal.SIGKILL)
    numbers += [trade(cluster, "meta", 1, "sell") for _ in range(5)]
    assert numbers == list(range(10)), "numbering must continue with no gap and no reuse"
    assert cluster.leader_id() == 2
    for n in numbers:
        r = cluster.get(f"/orders/{n}")
        assert r.status == 200, r
    assert cluster.stock("meta")["quantity"] == 1000 - 10 + 5


def test_an_order_lookup_finds_the_new_leader_too(cluster: Cluster) -> None:
    trade(cluster, "amc", 3, "buy")
    cluster.signal("order-3", signal.SIGKILL)
    r = cluster.get("/orders/0")
    assert r.status == 200, r
    assert r.json["data"] == {"number": 0, "name": "amc", "type": "buy", "quantity": 3}


def test_a_restarted_replica_catches_up_and_follows(cluster: Cluster) -> None:
    for _ in range(3):
        trade(cluster, "intel", 1, "buy")
    cluster.signal("order-1", signal.SIGKILL)  # a follower misses orders 3..22
    for _ in range(20):
        trade(cluster, "intel", 1, "buy")
    cluster.start("order-1")
    wait_for(lambda: "rejoined leader" in cluster.log("order-1"), what="order-1 to rejoin")
    for _ in range(5):  # propagated to the rejoined follower as well
        trade(cluster, "intel", 1, "sell")
    assert_dumps_identical(cluster, 28)


def test_a_replica_far_behind_installs_a_snapshot_then_streams_and_follows(cluster_factory) -> None:
    cluster = cluster_factory(settings={"replication": {"snapshot_gap": 10}})
    cluster.start_all()
    for _ in range(3):
        trade(cluster, "intel", 1, "buy")
    cluster.signal("order-1", signal.SIGKILL)  # misses 30 orders: more than the gap
    for i in range(30):
        trade(cluster, "intel", 1 + i % 3, "buy" if i % 2 else "sell")
    cluster.start("order-1")
    wait_for(lambda: "rejoined leader" in cluster.log("order-1"), what="order-1 to rejoin")
    assert "installed a snapshot of entries 0 to" in cluster.log("order-1")
    assert "sending a snapshot of entries 0 to" in cluster.log(f"order-{cluster.leader_id()}")
    for _ in range(5):  # propagated to it as well
        trade(cluster, "intel", 1, "sell")
    assert_dumps_identical(cluster, 38)
    # The same log, chain values and all, and no file of the snapshot left on either side.
    logs = [list(read_entries(cluster.root / "data" / f"order-{i}")) for i in (1, 2, 3)]
    assert logs[0] == logs[1] == logs[2]
    assert not [p for i in (1, 2, 3) for p in (cluster.root / "data" / f"order-{i}").iterdir()
                if p.name.startswith(("snapshot-", "received-"))]


def test_a_restarted_leader_rejoins_without_an_election(cluster: Cluster) -> None:
    trade(cluster, "nvidia", 1, "buy")
    cluster.signal("order-3", signal.SIGKILL)
    trade(cluster, "nvidia", 1, "buy")
    assert cluster.leader_id() == 2
    cluster.start("order-3")
    wait_for(lambda: "rejoined leader" in cluster.log("order-3"), what="order-3 to rejoin")
    assert cluster.leader_id() == 2  # no election on rejoin, though 3 is the higher id
    trade(cluster, "nvidia", 1, "buy")
    assert_dumps_identical(cluster, 3)


def test_a_full_restart_keeps_orders_stock_and_numbering(cluster: Cluster) -> None:
    for q in (5, 6, 7):
        trade(cluster, "amazon", q, "buy")
    before = [cluster.get(f"/orders/{n}").json for n in range(3)]
    cluster.stop_all()
    cluster.start_all()
    assert [cluster.get(f"/orders/{n}").json for n in range(3)] == before
    assert cluster.stock("amazon")["quantity"] == 1000 - 18
    assert trade(cluster, "amazon", 1, "sell") == 3
    assert_dumps_identical(cluster, 4)


def test_killing_the_leader_under_running_clients_changes_nothing_they_see(cluster: Cluster) -> None:
    url = f"http://127.0.0.1:{cluster.frontend_port}"
    clients = [
        subprocess.Popen(
            [sys.executable, "-m", "bazaar", "client", "--url", url, "-n", "150", "-p", "1",
             "--seed", str(seed)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for seed in (1, 2)
    ]
    try:
        wait_for(lambda: cluster.get("/orders/20").status == 200, what="clients to place 20 orders")
        cluster.signal("order-3", signal.SIGKILL)
        outputs = [c.communicate(timeout=120)[0] for c in clients]
    finally:
        for c in clients:
            c.kill()
    for c, out in zip(clients, outputs):
        assert c.returncode == 0, out
        assert "ALL ORDERS VERIFIED" in out and " 0 failed" in out, out
    cluster.start("order-3")
    wait_for(lambda: "rejoined leader" in cluster.log("order-3"), what="order-3 to rejoin")
    count = len(cluster.dump_orders(2))
    assert count >= 20
    assert_dumps_identical(cluster, count)


def test_a_follower_frozen_for_a_while_then_the_leader_killed_loses_nothing(cluster: Cluster) -> None:
    """A frozen follower stops holding trades back; once it thaws it is caught up, and whichever
    replica leads next, every acknowledged order keeps its number and content."""
    trade(cluster, "ford", 1, "buy")
    cluster.signal("order-2", signal.SIGSTOP)
    try:
        trade(cluster, "ford", 2, "buy")  # waits at most one propagation deadline for order-2
    finally:
        cluster.signal("order-2", signal.SIGCONT)
    for q in (3, 4):
        trade(cluster, "ford", q, "buy")
    acknowledged = [cluster.get(f"/orders/{n}").json["data"] for n in range(4)]
    cluster.signal("order-3", signal.SIGKILL)
    assert [cluster.get(f"/orders/{n}").json.get("data") for n in range(4)] == acknowledged
    assert trade(cluster, "tesla", 7, "sell") == 4
    assert cluster.stock("ford")["quantity"] == 1000 - 10


def retry(cluster: Cluster, key: str, name: str, quantity: int, type_: str):
    body = json.dumps({"name": name, "quantity": quantity, "type": type_})
    return cluster.request("POST", "/orders", body, {"Content-Type": "application/json", "Idempotency-Key": key})


def logged_keys(cluster: Cluster, replica: int) -> set[str]:
    return {e.key for e in read_entries(cluster.root / "data" / f"order-{replica}")}


def test_with_one_replica_left_trades_get_503_or_504_and_the_504_is_definite_later(cluster: Cluster) -> None:
    assert [trade(cluster, "amc", 1, "buy") for _ in range(2)] == [0, 1]
    committed = cluster.describe(cluster.leader_id()).committed_index
    # A follower learns the commit point with the leader's next batch or heartbeat (0.1 s).
    wait_for(lambda: cluster.describe(2).committed_index >= committed, deadline=5,
             what="replica 2 to learn that both orders are committed")
    cluster.signal("order-1", signal.SIGKILL)
    cluster.signal("order-3", signal.SIGKILL)
    first = cluster.post_order("amc", 1, "buy")  # one replica cannot be a majority: no leader
    assert first.status in (503, 504), first
    second = cluster.post_order("amc", 1, "buy")
    assert second.status in (503, 504), second
    for n in (0, 1):  # but committed orders can still be read
        r = cluster.get(f"/orders/{n}")
        assert r.status == 200 and r.json["data"]["number"] == n, r
    cluster.start("order-1")
    # A 503 means nothing was executed and nothing will be: retried, each is executed now.
    # A 504 means it may have been: retried, it gets its definite answer.
    numbers = set()
    for answered in (first, second):
        key = answered.headers["Idempotency-Key"]
        again = wait_for(lambda: (a := retry(cluster, key, "amc", 1, "buy")).status == 200 and a,
                         what=f"a definite answer for {key}")
        numbers.add(again.json["data"]["transaction_number"])
        assert retry(cluster, key, "amc", 1, "buy").json == again.json
    assert numbers == {2, 3}
    assert cluster.stock("amc")["quantity"] == 1000 - 4

    def logs_agree():
        dumps = [cluster.dump_orders(i) for i in (1, 2)]
        return dumps[0] == dumps[1] and len(dumps[0]) == 4

    wait_for(logs_agree, what="replicas 1 and 2 to hold the same four orders")


def test_a_503_is_never_executed(cluster: Cluster) -> None:
    """With both followers down, the leader refuses trades it cannot commit before it logs
    them: once it knows, a trade gets a prompt 503 and is never executed, not even when the
    followers return."""
    assert trade(cluster, "nike", 1, "buy") == 0
    for follower in ("order-1", "order-2"):
        cluster.signal(follower, signal.SIGKILL)
    answers = [cluster.post_order("nike", 2, "buy") for _ in range(3)]
    assert all(a.status in (503, 504) for a in answers), answers
    refused = [a.headers["Idempotency-Key"] for a in answers if a.status == 503]
    assert refused, "the leader should know its followers are gone after the first trade"
    for follower in ("order-1", "order-2"):
        cluster.start(follower)
    assert wait_for(lambda: cluster.post_order("nike", 3, "buy").status == 200 or None,
                    what="trades to resume once the followers are back")
    count = len(cluster.dump_orders(3))
    assert_dumps_identical(cluster, count)
    for replica in (1, 2, 3):
        assert not logged_keys(cluster, replica) & set(refused)


def test_a_leader_cut_off_from_both_followers_acknowledges_nothing(cluster: Cluster) -> None:
    assert trade(cluster, "nike", 1, "buy") == 0
    for follower in ("order-1", "order-2"):
        cluster.signal(follower, signal.SIGSTOP)
    try:
        r = cluster.post_order("nike", 2, "buy")
    finally:
        for follower in ("order-1", "order-2"):
            cluster.signal(follower, signal.SIGCONT)
    assert r.status in (503, 504), r  # not committed on a majority: never acknowledged
    assert wait_for(lambda: cluster.post_order("nike", 3, "buy").status == 200 or None,
                    what="trades to resume once the followers thaw")
    count = len(cluster.dump_orders(3))
    assert_dumps_identical(cluster, count)
    orders = cluster.dump_orders(1)
    moved = sum(o["quantity"] for o in orders)
    assert cluster.stock("nike")["quantity"] == 1000 - moved  # the catalog agrees with the log


def test_a_frozen_leader_is_replaced_and_rejoins_when_it_thaws(cluster: Cluster) -> None:
    assert [trade(cluster, "tesla", 1, "buy") for _ in range(3)] == [0, 1, 2]
    cluster.signal("order-3", signal.SIGSTOP)
    try:
        assert trade(cluster, "tesla", 2, "buy") == 3  # no client-visible error
        assert cluster.leader_id() == 2
    finally:
        cluster.signal("order-3", signal.SIGCONT)
    assert trade(cluster, "tesla", 3, "sell") == 4
    assert_dumps_identical(cluster, 5)  # the thawed old leader follows the new one
    assert cluster.stock("tesla")["quantity"] == 1000 - 3 - 2 + 3
