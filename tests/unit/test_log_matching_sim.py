"""The protocol core in a simulated three-replica cluster (tests/unit/sim.py): hand-written
schedules first (Raft's figure 8 among them), then randomized ones with several faults at
once: two replicas down together (the leader among them), freezes, cut links, restarts in any
order, the catalog stopped during takeovers. Every step is checked; see sim.py for what."""

import random

import pytest

from bazaar.core.chain import Kind
from bazaar.core.outcome import Final
from tests.unit.sim import CALL_TIMEOUT, LEASE, NAMES, Cluster, Message, SimReplica


def run(cluster: Cluster, steps: int, faults: bool = False) -> None:
    for _ in range(steps):
        cluster.step(faults=faults)


def deliver_all(cluster: Cluster, kinds: tuple[str, ...] = ("promise", "promised", "propagate", "propagated"),
                only: set[frozenset[str]] | None = None, propagate: bool = True, flush: bool = True) -> None:
    """Deliver queued messages of `kinds` (between the pairs in `only`), until none is left;
    with `propagate`, leaders send what their followers lack after each delivery; with
    `flush`, every replica's own writes reach its disk meanwhile."""
    for _ in range(1000):
        ready = [m for m in cluster.net.queue if m.kind in kinds
                 and (only is None or frozenset((m.src, m.dst)) in only)
                 and not cluster.replicas[m.dst].frozen]
        if not ready:
            return
        message: Message = ready[0]
        cluster.net.queue.remove(message)
        target = cluster.replicas[message.dst]
        if not (target.down or cluster.replicas[message.src].down or not cluster.net.connected(message.src, message.dst)):
            getattr(cluster, "_on_" + message.kind)(target, message)
        for replica in cluster.replicas.values():
            if flush and not replica.down and not replica.frozen and replica.flush() and replica.replication is not None:
                cluster._release(replica)  # its own writes reach its disk as promptly as the followers'
            if propagate and replica.replication is not None and not replica.down and not replica.frozen:
                cluster._propagate(replica)
    raise AssertionError("messages kept coming")


def new_cluster() -> Cluster:
    """A cluster whose replicas started more than a lease ago (until then, each keeps faith
    with whatever leader it may have answered before a restart, and promises nothing)."""
    cluster = Cluster(random.Random(0))
    cluster.step_no = LEASE + 1
    return cluster


def heartbeats(cluster: Cluster) -> None:
    """Every leader checks its lease (stepping down if it lapsed) and sends each follower a batch."""
    for replica in cluster.replicas.values():
        if replica.replication is not None and not replica.down and not replica.frozen:
            cluster._heartbeat(replica)
            if replica.replication is not None:
                replica.heartbeat_due = set(replica.followers)
                cluster._propagate(replica)


def time_passes(cluster: Cluster, kinds: tuple[str, ...] = ("promise", "promised", "propagate", "propagated")) -> None:
    """Deliver what can be delivered, then let unanswered calls time out, a few times over;
    leaders send their heartbeats meanwhile."""
    for _ in range(4):
        deliver_all(cluster, kinds)
        cluster.step_no += CALL_TIMEOUT + 1
        cluster._time_out_calls()
        if "propagated" in kinds:  # else a leader's lease could only lapse
            heartbeats(cluster)
    deliver_all(cluster, kinds)


def stand(cluster: Cluster, name: str) -> None:
    """`name` is selected once every follower's faith in an earlier leader has lapsed."""
    cluster.step_no += LEASE + 1
    heartbeats(cluster)
    cluster.select(name)


def lead(cluster: Cluster, name: str) -> None:
    stand(cluster, name)
    time_passes(cluster)
    assert cluster.replicas[name].serving


def place(cluster: Cluster, leader: str, key: str, name: str = "tesla", type_: str = "sell", quantity: int = 1):
    replica = cluster.replicas[leader]
    entry = replica.core.place(name, type_, quantity, key)
    replica.append(entry)
    return entry


def crash(replica: SimReplica) -> None:
    """A crash once the replica's own writes are on its disk, as each case here sets out (the
    random runs crash leaders whose last entries are not on their disk yet)."""
    replica.flush()
    replica.crash()


def pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


def test_a_new_leader_serves_once_its_leader_entry_is_on_a_majority() -> None:
    cluster = new_cluster()
    stand(cluster, "r3")
    assert not cluster.replicas["r3"].serving
    deliver_all(cluster)
    r3 = cluster.replicas["r3"]
    assert r3.serving and [e.kind for e in r3.log] == [Kind.LEADER]
    assert r3.log == cluster.replicas["r1"].log == cluster.replicas["r2"].log


def test_an_entry_on_both_followers_is_committed_before_the_leaders_own_fsync_and_survives_its_crash() -> None:
    cluster = new_cluster()
    lead(cluster, "r1")
    r1, r2, r3 = (cluster.replicas[n] for n in NAMES)
    a = place(cluster, "r1", "A")
    cluster._propagate(r1)
    deliver_all(cluster, flush=False)  # on r2's and r3's disks; r1's write is still on its way
    assert r1.core.last_durable < a.index <= r1.committed, "a majority holds A: it is committed"
    r1.crash()  # A was not on r1's disk
    assert len(r1.log) == a.index
    cluster.net.queue.clear()
    lead(cluster, "r2")
    assert r2.log[a.index] == a and r2.committed > a.index
    r1.restart()
    time_passes(cluster)
    assert r1.log[a.index] == a


def test_figure_8_an_older_epochs_entry_on_a_majority_is_not_committed_by_counting() -> None:
    """Raft's figure 8 with three replicas. r1 leads epoch 1 and logs A alone; r2 leads epoch 2
    and logs its leader entry alone; r1 comes back, leads epoch 3 and gets A onto r3. A is now
    on a majority (r1, r3) but is not committed until r1's own leader entry is: otherwise r2,
    whose log ends in epoch 2, could win again with r3's promise and replace A."""
    cluster = new_cluster()
    lead(cluster, "r1")
    r1, r2, r3 = (cluster.replicas[n] for n in NAMES)
    a = place(cluster, "r1", "A")  # index 1, epoch 1: on r1 only
    crash(r1)
    cluster.net.queue.clear()
    stand(cluster, "r2")  # epoch 2, with r3's promise; its leader entry reaches nobody
    time_passes(cluster, kinds=("promise", "promised"))
    assert r2.core.is_leader and r2.log[-1].kind is Kind.LEADER and r2.log[-1].epoch == 2
    crash(r2)
    cluster.net.queue.clear()
    r1.restart()
    stand(cluster, "r1")  # r3 refuses epoch 2 (it promised r2): r1 stands again, for 3
    time_passes(cluster, kinds=("promise", "promised"))
    assert r1.core.is_leader and r1.core.epoch == 3
    # Only A reaches r3: r1's leader entry (index 2) is cut from the batch that carries it.
    for _ in range(10):
        cluster._propagate(r1)
        for message in [m for m in cluster.net.queue if m.kind == "propagate" and m.dst == "r3"]:
            message.body["records"] = [r for r in message.body["records"] if r.index <= 1]
        deliver_all(cluster, kinds=("propagate", "propagated"), only={pair("r1", "r3")}, propagate=False)
        if len(r3.log) > 1:
            break
    assert r3.log[1] == a
    assert r1.replication.match("r3") == 1
    assert r1.committed < 1, "A counted as committed though no entry of epoch 3 is on a majority"
    # r1 dies; r2 comes back and takes over with r3: r3's log (A of epoch 1) loses to r2's
    # (leader entry of epoch 2), so A is replaced. That is allowed: A was never committed.
    crash(r1)
    cluster.net.queue.clear()
    r2.restart()
    lead(cluster, "r2")
    assert r3.log[1].epoch == 2 and "A" not in {e.key for e in r3.log}
    assert 1 not in {i for i, (e, _) in cluster.acknowledged.items() if e.key == "A"}
    cluster.check()


def test_figure_8_once_the_leader_entry_is_on_a_majority_the_entry_survives() -> None:
    cluster = new_cluster()
    lead(cluster, "r1")
    r1, r2, r3 = (cluster.replicas[n] for n in NAMES)
    place(cluster, "r1", "A")
    crash(r1)
    cluster.net.queue.clear()
    stand(cluster, "r2")
    time_passes(cluster, kinds=("promise", "promised"))
    crash(r2)
    cluster.net.queue.clear()
    r1.restart()
    lead(cluster, "r1")  # A and the leader entry of epoch 3 reach r3: both committed
    assert r1.committed == 2 and r3.log[1].key == "A"
    crash(r1)
    cluster.net.queue.clear()
    r2.restart()
    lead(cluster, "r2")  # r3's log ends in epoch 3: r2 adopts it
    assert r2.log[1].key == "A" and r2.log[2].epoch == 3
    cluster.check()


def test_a_replaced_leader_cannot_get_an_entry_acknowledged() -> None:
    """r3 leads; it freezes, r2 takes over with r1's promise; r3 thaws and keeps sending: r1
    refuses its epoch, so nothing r3 appends can commit, and r3 steps down."""
    cluster = new_cluster()
    lead(cluster, "r3")
    r3 = cluster.replicas["r3"]
    r3.frozen = True
    lead(cluster, "r2")
    r3.frozen = False
    stale = place(cluster, "r3", "late")
    deliver_all(cluster)
    assert not r3.core.is_leader
    assert all(e.key != "late" for r in cluster.replicas.values() for e in r.log) or stale.index not in cluster.acknowledged
    cluster.check()


def test_two_candidates_never_serve_in_one_epoch() -> None:
    cluster = new_cluster()
    lead(cluster, "r3")
    stand(cluster, "r1")
    cluster.select("r2")  # at the same time
    deliver_all(cluster)
    serving = [r.name for r in cluster.replicas.values() if r.serving]
    assert len(serving) == 1
    cluster.check()


def trade(cluster: Cluster, name: str = "tesla", type_: str = "sell"):
    cluster.submit()
    client = cluster.clients[-1]
    client.name, client.type = name, type_
    return client


def test_with_both_followers_gone_trades_get_504_then_a_definite_503() -> None:
    """The first trade after both followers went is logged and stays in doubt (504, it may
    still commit); once the leader's lease has lapsed, the next finds no leader with a
    majority and is refused unlogged (503, never executed)."""
    cluster = new_cluster()
    lead(cluster, "r3")
    for name in ("r1", "r2"):
        crash(cluster.replicas[name])
    cluster.net.queue.clear()
    first = trade(cluster)
    cluster._attempt(first)
    assert first.at == "r3" and first.final is None  # logged, waiting for a majority
    for _ in range(1000):
        if first.final is not None:
            break
        cluster.step_no += 1
        cluster._propagate(cluster.replicas["r3"])
        cluster.net.queue.clear()
        cluster._time_out_calls()
        cluster._clients_step()
    assert first.final is Final.UNKNOWN
    second = trade(cluster)
    cluster._attempt(second)
    assert second.final is Final.UNAVAILABLE
    cluster.settle()
    cluster.check_final()
    # The first trade may have committed after all (r3's log wins the next takeover) or not
    # (r1 or r2 leads with the other one): 504 said it could go either way.
    assert second.key not in {e.key for e in cluster.replicas["r1"].log}


def test_a_follower_that_lagged_many_epochs_promises_the_candidates_second_attempt() -> None:
    """r3 is down while r1 and r2 take over from each other again and again; then r2 dies and
    r3 comes back with its old epoch. r1 can lead only with r3's promise, far beyond one step
    of anything r3 has seen: r3 refuses the first attempt (reporting its old epoch) and
    promises the next, one above it, in the same candidacy."""
    cluster = new_cluster()
    r1, r2, r3 = (cluster.replicas[n] for n in NAMES)
    lead(cluster, "r3")
    crash(r3)
    cluster.net.queue.clear()
    for name in ["r1", "r2"] * 3:
        lead(cluster, name)
    crash(r2)
    cluster.net.queue.clear()
    r3.restart()
    assert r1.core.epoch >= r3.core.epoch + 5
    lagging = r3.core.epoch
    stand(cluster, "r1")
    first = r1.candidacy.epoch
    assert first > lagging + 1
    time_passes(cluster, kinds=("promise", "promised"))  # r2's answer never comes
    assert r1.candidacy is None and r1.core.is_leader, "won in the same candidacy"
    assert r3.core.epoch == r1.core.epoch == first + 1
    time_passes(cluster)
    assert r1.serving and r3.log == r1.log


@pytest.mark.parametrize("seed", range(150))
def test_random_faults_never_lose_an_acknowledged_trade(seed: int) -> None:
    cluster = Cluster(random.Random(seed))
    run(cluster, 600, faults=True)
    cluster.settle()
    cluster.check_final()
    trades = [e for e in cluster.replicas["r1"].log if e.is_trade]
    assert [e.number for e in trades] == list(range(len(trades)))
