"""Freezes and restarts that used to stall trading: every one ends with trading going on.

Real processes, started as a user would (catalog, replicas 1-3, front end, each once the one
before listens). Waits poll a condition against a deadline; speeds are measured in bench/.
"""

import signal
import threading

import pytest

from bazaar.v1 import order_pb2
from tests.integration.cluster import Cluster, wait_for

pytestmark = pytest.mark.integration

STARTS = 10


def trade(cluster: Cluster, frontend: str = "frontend") -> int:
    r = cluster.post_order("tesla", 1, "sell", frontend=frontend)
    assert r.status == 200, r
    return r.json["data"]["transaction_number"]


def leader_epoch(cluster: Cluster, replica_id: int) -> int:
    """The epoch `replica_id` leads in, once it serves (its takeover may still be finishing)."""
    described = wait_for(lambda: (d := cluster.describe(replica_id)).role == order_pb2.REPLICA_ROLE_LEADER and d,
                         deadline=10, what=f"replica {replica_id} to lead")
    return described.leader_epoch


def logs_converge(cluster: Cluster, count: int) -> None:
    """The three logs become identical, holding `count` trades, with no traffic sent."""

    def identical():
        dumps = [cluster.dump_orders(i) for i in (1, 2, 3)]
        return dumps[0] == dumps[1] == dumps[2] and len(dumps[0]) == count

    wait_for(identical, deadline=20, what="the three logs to become identical with no traffic")


def test_the_highest_id_leads_at_every_start(cluster_factory) -> None:
    cluster = cluster_factory()
    numbers = []
    try:
        for start in range(STARTS):
            cluster.start_all()
            assert cluster.leader_id() == 3, f"start {start}: replica {cluster.leader_id()} leads"
            numbers.append(trade(cluster))
            cluster.stop_all()
    finally:
        cluster.stop_all()
    assert numbers == list(range(STARTS)), "each start goes on from the log it left"


def test_a_leader_frozen_after_a_trade_is_replaced_while_still_frozen(cluster: Cluster) -> None:
    assert trade(cluster) == 0
    cluster.signal("order-3", signal.SIGSTOP)
    try:
        # Answered by a new leader while the old one is still frozen.
        assert trade(cluster) == 1
        assert cluster.leader_id() == 2
    finally:
        cluster.signal("order-3", signal.SIGCONT)
    # Thawed, the old leader finds its lease lapsed, steps down and follows.
    wait_for(lambda: cluster.describe(3).role == order_pb2.REPLICA_ROLE_FOLLOWER, deadline=10,
             what="the thawed leader to follow")
    assert trade(cluster) == 2
    logs_converge(cluster, 3)


def test_with_both_followers_frozen_trades_get_a_prompt_503_then_resume_after_the_thaw(cluster: Cluster) -> None:
    assert trade(cluster) == 0
    frozen = ("order-1", "order-2")
    for name in frozen:
        cluster.signal(name, signal.SIGSTOP)
    try:
        answers = []

        def refused() -> bool:
            r = cluster.post_order("tesla", 1, "sell")
            answers.append(r.status)
            return r.status == 503

        # The first trade may be logged by the leader before it notices (504, in doubt); once
        # it has stepped down for want of a majority, nothing can be logged: 503.
        wait_for(refused, deadline=15, what="a 503 while no majority can be reached")
        assert set(answers) <= {503, 504}, answers
        assert cluster.describe(3).role != order_pb2.REPLICA_ROLE_LEADER, "a leader without a majority steps down"
    finally:
        for name in frozen:
            cluster.signal(name, signal.SIGCONT)
    resumed = wait_for(lambda: (r := cluster.post_order("tesla", 1, "sell")).status == 200 and r,
                       deadline=15, what="trading to resume after the thaw")
    # Number 1 went to the trade left in doubt if it committed after the thaw, else to this one.
    count = resumed.json["data"]["transaction_number"] + 1
    assert count in (2, 3)
    logs_converge(cluster, count)


def test_a_front_end_restart_keeps_the_leader_and_its_epoch(cluster: Cluster) -> None:
    assert trade(cluster) == 0
    epoch = leader_epoch(cluster, 3)
    cluster.signal("frontend", signal.SIGTERM)
    cluster.start("frontend")
    cluster.wait_ready()
    assert cluster.leader_id() == 3
    assert trade(cluster) == 1
    assert leader_epoch(cluster, 3) == epoch, "the restarted front end adopted the leader as it was"
    assert "taking over" not in cluster.log("order-3").split("leading in epoch")[-1]


def test_a_second_front_end_trading_at_the_same_time_never_deposes_the_leader(cluster_factory) -> None:
    cluster = cluster_factory(frontends=2)
    for name in ["catalog", "order-1", "order-2", "order-3", "frontend"]:
        cluster.start(name)
    cluster.wait_ready()
    epoch = leader_epoch(cluster, 3)
    numbers: dict[str, list[int]] = {"frontend": [], "frontend-2": []}
    errors: list[BaseException] = []

    def trade_through(frontend: str, count: int) -> None:
        try:
            for _ in range(count):
                numbers[frontend].append(trade(cluster, frontend))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    first = threading.Thread(target=trade_through, args=("frontend", 40))
    first.start()
    try:
        cluster.start("frontend-2")  # starts, selects, and trades while the first one trades
        trade_through("frontend-2", 40)
    finally:
        first.join(60)
    assert not first.is_alive() and not errors, errors
    assert leader_epoch(cluster, 3) == epoch, "no takeover happened"
    assert sorted(numbers["frontend"] + numbers["frontend-2"]) == list(range(80))
