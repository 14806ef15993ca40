"""A leader cut off from its followers on real test hosts (one network namespace per service,
packets dropped by iptables): the front end still reaches it, but a new leader is chosen
among the majority and trades go on while the cut lasts; once it heals, the old leader
follows and the logs converge with no traffic. Skips where test hosts cannot be made."""

import http.client
import json
from contextlib import closing
from pathlib import Path

import grpc
import pytest

from bazaar.chaos import hosts
from bazaar.chaos.network import LEADER_CUT, Firewall, NetPlan
from bazaar.chaos.processes import FRONTEND, NAMES, ChaosCluster, wait_for
from bazaar.config import load_config
from bazaar.order.store import read_entries
from bazaar.tools.cluster import operator_channel
from bazaar.v1 import order_pb2, order_pb2_grpc

pytestmark = pytest.mark.integration

DEADLINE = 30.0


@pytest.fixture
def test_hosts():
    try:
        hosts.check_available()
    except hosts.HostsUnavailable as e:
        pytest.skip(f"test hosts unavailable: {e}")
    with hosts.TestHosts() as h:
        yield h


def post_order(cluster: ChaosCluster) -> tuple[int, dict]:
    host, port = cluster.addresses[FRONTEND], cluster.ports[FRONTEND]
    with closing(http.client.HTTPConnection(host, port, timeout=10)) as conn:
        conn.request("POST", "/orders", json.dumps({"name": "tesla", "quantity": 1, "type": "sell"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")


def describe(cluster: ChaosCluster, name: str) -> order_pb2.DescribeResponse | None:
    with operator_channel(load_config(cluster.config_path), f"{cluster.addresses[name]}:{cluster.ports[name]}") as channel:
        try:
            return order_pb2_grpc.OrderServiceStub(channel).Describe(order_pb2.DescribeRequest(), timeout=2)
        except grpc.RpcError:
            return None


def leader(cluster: ChaosCluster) -> str | None:
    for name in ("order-3", "order-2", "order-1"):
        d = describe(cluster, name)
        if d is not None and d.role == order_pb2.REPLICA_ROLE_LEADER:
            return name
    return None


def test_a_leader_cut_from_its_followers_is_replaced_and_follows_after_the_heal(test_hosts, tmp_path: Path):
    cluster = ChaosCluster(tmp_path, hosts=test_hosts)
    firewall = Firewall(test_hosts.run_id, {n: test_hosts.netns(n) for n in NAMES}, test_hosts.address)
    try:
        firewall.install()
        cluster.start_all(lambda: leader(cluster) is not None, DEADLINE)
        assert post_order(cluster)[0] == 200
        old = leader(cluster)
        assert old == "order-3"
        cut = firewall.apply(NetPlan(LEADER_CUT, (old, "order-1", "order-2"), True, 0.0))
        try:
            # While the cut lasts, the front end (which still reaches order-3) gets a trade
            # through a new leader among order-1 and order-2.
            status, body = post_order(cluster)
            assert status == 200, body
            assert wait_for(lambda: leader(cluster) == "order-2", DEADLINE, "order-2 to lead")
            assert describe(cluster, old).role != order_pb2.REPLICA_ROLE_LEADER, "the cut leader stepped down"
        finally:
            firewall.heal(cut)
        # Healed, with no traffic: the old leader follows the new one and the logs converge.
        wait_for(lambda: describe(cluster, old).leader_id == 2, DEADLINE, "the old leader to follow order-2")

        def converged() -> bool:
            logs = [list(read_entries(cluster.root / "data" / f"order-{i}")) for i in (1, 2, 3)]
            return logs[0] == logs[1] == logs[2]

        wait_for(converged, DEADLINE, "the three logs to converge with no traffic")
    finally:
        cluster.stop_all()
        firewall.heal_all()
