"""The log-matching protocol in a simulated three-replica cluster: crashes at every point of
propagation, cut links, a dead leader's divergent tail, rejoins. Logs always converge on the
current leader's, and what a leader acknowledged with its followers never disappears."""

import random

import pytest

from tests.unit.sim import Network, SimReplica, settle

NAMES = ["r1", "r2", "r3"]


def cluster(settled_orders: int = 0) -> tuple[dict[str, SimReplica], Network]:
    """r3 leading r1 and r2, with `settled_orders` orders already on all three."""
    peers, net = {n: SimReplica(n) for n in NAMES}, Network()
    peers["r3"].lead(["r1", "r2"])
    for i in range(settled_orders):
        peers["r3"].trade(f"a{i}")
    settle(peers["r3"], peers, net)
    return peers, net


def orders_of(replica: SimReplica) -> list:
    return [e.order for e in replica.log]


def test_followers_get_every_order_in_sequence() -> None:
    peers, net = cluster(settled_orders=10)
    leader = peers["r3"]
    assert orders_of(peers["r1"]) == orders_of(peers["r2"]) == orders_of(leader)
    assert leader.acknowledged_through() == 9


def test_a_new_leader_overwrites_the_dead_leaders_partial_order_on_a_follower() -> None:
    peers, net = cluster(settled_orders=3)
    old = peers["r3"]
    old.trade("lost")  # numbered 3, reaches r1 only, then r3 dies
    net.cut.add(frozenset(("r3", "r2")))
    old.propagate_once(peers, net)
    assert len(peers["r1"].log) == 4 and len(peers["r2"].log) == 3
    net.down.add("r3")
    new = peers["r2"]
    new.restart()
    new.lead(["r1"])  # without taking over first: the new leader's log is the truth
    new.trade("kept")  # also numbered 3
    settle(new, peers, net)
    assert orders_of(peers["r1"]) == orders_of(new)
    assert peers["r1"].log[3].order.name == "kept"


def test_the_old_leaders_unreplicated_tail_is_discarded_when_it_rejoins() -> None:
    peers, net = cluster(settled_orders=5)
    old = peers["r3"]
    net.isolate("r3", ["r1", "r2"])
    for i in range(6):
        old.trade(f"private{i}")  # durable on r3 only; never acknowledged
    old.propagate_once(peers, net)
    net.down.add("r3")
    new = peers["r2"]
    new.restart()
    new.lead(["r1"])
    for i in range(2):
        new.trade(f"b{i}")
    settle(new, peers, net)
    net.down.clear()
    net.recover()
    old.restart()
    old.synchronize_from(new)
    settle(new, peers, net)
    assert orders_of(old) == orders_of(new) == orders_of(peers["r1"])
    assert not any(o.name.startswith("private") for o in orders_of(old))


def test_a_new_leader_that_fell_behind_adopts_what_its_followers_acknowledged() -> None:
    """The front end elects the highest id even when it lags: it must catch up, not truncate."""
    peers, net = cluster(settled_orders=1)
    leader = peers["r3"]
    net.cut.add(frozenset(("r3", "r2")))  # r2 frozen for a moment: detached
    leader.trade("while r2 was away")
    leader.propagate_once(peers, net)
    assert leader.replication.reachable == ["r1"]
    net.recover()
    for i in range(2):
        leader.trade(f"b{i}")
    leader.propagate_once(peers, net)  # r1 takes them; r2 is fed too, but only from its match on
    acknowledged = [e.order for e in leader.log[: leader.acknowledged_through() + 1]]
    assert len(acknowledged) == 4
    net.down.add("r3")
    new = peers["r2"]
    new.restart()
    assert new.take_over(peers, ["r1", "r3"], net)
    settle(new, peers, net)
    assert orders_of(new)[:4] == acknowledged == orders_of(peers["r1"])[:4]
    assert new.trade("next").number == 4


def test_a_replaced_leader_that_is_still_alive_is_refused_and_steps_down() -> None:
    peers, net = cluster(settled_orders=2)
    old = peers["r3"]
    net.isolate("r3", ["r1", "r2"])  # frozen or cut off: the front end moves on
    new = peers["r2"]
    assert new.take_over(peers, ["r1", "r3"], net)
    new.trade("new")
    settle(new, peers, net)
    net.recover()
    old.trade("from the past")  # it still believes it leads
    old.propagate_once(peers, net)
    assert not old.core.is_leader
    assert [o.name for o in orders_of(peers["r1"])] == ["a0", "a1", "new"]


def test_an_old_leader_thawed_during_a_takeover_cannot_get_an_order_acknowledged() -> None:
    """The new leader's epoch is promised before it reads any log: from then on the old
    leader's batches are refused, so nothing it numbers can be acknowledged and then lost."""
    peers, net = cluster(settled_orders=2)
    old, new = peers["r3"], peers["r2"]
    net.isolate("r3", ["r2"])  # r3 frozen as far as the front end and r2 are concerned
    promised = new.stand(peers, ["r1", "r3"], net)
    assert promised == ["r1"]
    old.trade("queued at the old leader")  # r3 thaws and serves a request it had queued
    old.propagate_once(peers, net)
    assert not old.core.is_leader
    assert old.acknowledged_through() == 1  # never acknowledged
    assert new.finish_takeover(peers, ["r1", "r3"], promised)
    new.trade("new")
    net.recover()
    settle(new, peers, net)
    assert [o.name for o in orders_of(peers["r1"])] == ["a0", "a1", "new"]


def test_two_candidates_never_share_an_epoch() -> None:
    peers, net = cluster(settled_orders=1)
    first = peers["r3"].stand(peers, ["r1", "r2"], net)
    second = peers["r2"].stand(peers, ["r1", "r3"], net)
    assert peers["r2"].standing_for > peers["r3"].standing_for
    assert first and second  # the second stood higher, and every replica promised it
    assert not peers["r3"].finish_takeover(peers, ["r1", "r2"], first)
    assert peers["r2"].finish_takeover(peers, ["r1", "r3"], second)
    assert [r.name for r in peers.values() if r.core.is_leader] == ["r2"]


def test_a_follower_keeps_a_tail_of_its_leaders_own_epoch_on_a_late_duplicate() -> None:
    peers, net = cluster(settled_orders=2)
    leader, follower = peers["r3"], peers["r1"]
    old_batch = (1, leader.chain_at(1), [], 1, leader.core.epoch)  # sent when the leader's last was 1
    for i in range(3):
        leader.trade(f"b{i}")
    settle(leader, peers, net)
    assert follower.receive(*old_batch) == ("ok", 1)
    assert len(follower.log) == 5


def test_a_replica_alone_cannot_take_over() -> None:
    peers, net = cluster(settled_orders=1)
    net.down = {"r3", "r1"}
    assert not peers["r2"].take_over(peers, ["r1", "r3"], net)
    assert not peers["r2"].core.is_leader


def record_acknowledged(leader: SimReplica, acknowledged: dict) -> None:
    """Orders the leader has acknowledged, with the replicas known to hold them then."""
    if leader.core.is_leader:
        for e in leader.log[: leader.acknowledged_through() + 1]:
            matches = {a: leader.replication.match(a) for a in leader.replication.followers}
            holders = {a for a, m in matches.items() if m is not None and m >= e.number}
            acknowledged.setdefault(e.number, (e.order, holders | {leader.name}))


@pytest.mark.parametrize("seed", range(300))
def test_random_crashes_and_partitions_always_converge(seed: int) -> None:
    rng = random.Random(seed)
    peers, net = cluster()
    leader = peers["r3"]
    acknowledged: dict[int, object] = {}
    for epoch in range(6):
        for step in range(rng.randint(1, 12)):
            leader.trade(f"e{epoch}s{step}")
            if rng.random() < 0.3:
                leader.propagate_once(peers, net, limit=rng.randint(1, 4))
            if rng.random() < 0.1:  # a link fails: that follower is detached for a while
                follower = rng.choice([n for n in NAMES if n != leader.name])
                net.cut.add(frozenset((leader.name, follower)))
        if rng.random() < 0.5:
            settle(leader, peers, net)
        record_acknowledged(leader, acknowledged)
        survivors = [n for n in NAMES if n != leader.name]
        new = peers[max(survivors)]
        new.restart()
        others = [n for n in NAMES if n != new.name]
        if rng.random() < 0.4:
            # The leader froze: a new one stands, then the old one thaws mid-takeover and
            # serves what it had queued before the new leader has read anyone's log.
            net.recover()
            net.isolate(leader.name, survivors)
            promised = new.stand(peers, others, net)
            net.recover()
            for step in range(rng.randint(1, 3)):
                if not leader.core.is_leader:
                    break  # a follower refused its epoch: it stepped down
                leader.trade(f"e{epoch}thawed{step}")
                leader.propagate_once(peers, net)
                record_acknowledged(leader, acknowledged)
            assert new.finish_takeover(peers, others, promised)
            settle(new, peers, net)
        else:
            net.down = {leader.name}
            net.recover()
            assert new.take_over(peers, others, net)
            settle(new, peers, net)
            net.down.clear()
            peers[leader.name].restart()
            peers[leader.name].synchronize_from(new)
        leader = new
    settle(leader, peers, net)
    logs = [orders_of(peers[n]) for n in NAMES]
    assert logs[0] == logs[1] == logs[2], f"seed {seed}: logs diverge"
    assert [o.number for o in logs[0]] == list(range(len(logs[0])))
    final = {o.number: o for o in logs[0]}
    for number, (order, holders) in acknowledged.items():
        # Acknowledged means held by a majority; one replica fails at a time: never lost.
        assert len(holders) >= 2, f"seed {seed}: order {number} acknowledged by {holders} alone"
        assert final.get(number) == order, f"seed {seed}: acknowledged order {number} lost"
