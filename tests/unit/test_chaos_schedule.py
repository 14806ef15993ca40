"""The chaos harness's fault schedule and traffic timeline: seeded, reproducible, with faults of
two processes at once (two replicas; the leader and the catalog) beside single ones, and idle
pauses between the clients' bursts. The injector runs on a fake clock against a fake cluster."""

import random
import signal

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bazaar.chaos import faults as f
from bazaar.chaos.faults import (
    CATALOG, CLASSES, FREEZE, KILL, LEADER_CATALOG, MAX_OFFSET, SINGLE, TWO_REPLICAS, FaultInjector, Schedule,
    choose_fault, fault_classes,
)
from bazaar.chaos.traffic import LONG_PAUSE, Pause, Traffic

REPLICAS = {"order-1", "order-2", "order-3"}


def test_fault_choice_hits_the_leader_at_least_every_other_time_in_every_class():
    rng = random.Random(3)
    previous = True
    for i in range(900):
        plan = choose_fault(rng, 2, previous, CLASSES[i % 3])
        if not previous:
            assert plan.was_leader and "order-2" in {h.target for h in plan.hits}
        for hit in plan.hits:
            assert hit.kind in (KILL, FREEZE)
            assert hit.was_leader == (hit.target == "order-2")
        previous = plan.was_leader


def test_single_faults_keep_their_short_lengths():
    rng = random.Random(4)
    targets = set()
    for _ in range(300):
        (hit,) = choose_fault(rng, 1, True, SINGLE).hits
        lo, hi = (0.5, 3.0) if hit.kind == FREEZE else (0.1, 1.5)
        assert lo <= hit.pause <= hi and hit.offset == 0.0
        targets.add(hit.target)
    assert targets == REPLICAS | {"catalog", "frontend"}


def test_two_replica_faults_hit_two_replicas_the_leader_among_them_often():
    rng = random.Random(5)
    with_leader = 0
    kinds = set()
    for _ in range(300):
        plan = choose_fault(rng, 3, True, TWO_REPLICAS)
        targets = [h.target for h in plan.hits]
        assert len(targets) == 2 and len(set(targets)) == 2 and set(targets) <= REPLICAS
        with_leader += plan.was_leader
        kinds.add(tuple(sorted(h.kind for h in plan.hits)))
        offsets = sorted(h.offset for h in plan.hits)
        assert offsets[0] == 0.0 and 0.0 <= offsets[1] <= MAX_OFFSET
        for hit in plan.hits:
            lo, hi = f.DOUBLE_FREEZE_TIME if hit.kind == FREEZE else f.DOUBLE_KILL_PAUSE
            assert lo <= hit.pause <= hi
    assert 100 < with_leader < 300  # TWO_REPLICAS_LEADER_SHARE of them
    assert kinds == {(KILL, KILL), (FREEZE, FREEZE), (KILL, FREEZE)}
    assert choose_fault(rng, 3, False, TWO_REPLICAS).was_leader


def test_leader_and_catalog_faults_hit_exactly_those():
    rng = random.Random(6)
    for _ in range(50):
        plan = choose_fault(rng, 1, True, LEADER_CATALOG)
        assert {(h.target, h.was_leader) for h in plan.hits} == {("order-1", True), (CATALOG, False)}
    blind = choose_fault(rng, None, False, LEADER_CATALOG)
    assert {h.target for h in blind.hits} - REPLICAS == {CATALOG} and not blind.was_leader


def test_without_a_known_leader_only_replicas_are_picked_blindly():
    for fault_class in (SINGLE, TWO_REPLICAS):
        plan = choose_fault(random.Random(1), None, False, fault_class)
        assert {h.target for h in plan.hits} <= REPLICAS and not plan.was_leader


def test_fault_choice_is_reproducible():
    a = [choose_fault(random.Random(5), 1, i % 2 == 0, CLASSES[i % 3]) for i in range(20)]
    b = [choose_fault(random.Random(5), 1, i % 2 == 0, CLASSES[i % 3]) for i in range(20)]
    assert a == b


def test_the_schedule_deals_every_class_in_every_round_of_four():
    for seed in range(20):
        classes = fault_classes(seed, 40)
        for start in range(0, 40, 4):
            assert sorted(classes[start:start + 4]) == sorted(f.DECK)
        assert classes == fault_classes(seed, 40)
    assert len({tuple(fault_classes(seed, 8)) for seed in range(20)}) > 1


def test_the_schedule_is_seeded_and_contains_double_faults():
    schedule_a, schedule_b = Schedule(9), Schedule(9)
    a = [schedule_a.plan(2, i % 2 == 0) for i in range(12)]
    b = [schedule_b.plan(2, i % 2 == 0) for i in range(12)]
    assert a == b and a != [Schedule(10).plan(2, i % 2 == 0) for i in range(12)]
    assert {p.fault_class for p in a} == set(CLASSES)
    assert any(len(p.hits) == 2 and {h.target for h in p.hits} <= REPLICAS for p in a)
    assert any({h.target for h in p.hits} == {"order-2", CATALOG} for p in a)


def test_some_faults_wait_for_a_long_pause_of_the_clients():
    traffic = Traffic([Pause(3.0, 3.4), Pause(6.0, 8.0), Pause(30.0, 32.0)])
    schedule = Schedule(1)
    starts = [schedule.start_time(5.0, 5.0, traffic) for _ in range(200)]
    assert set(starts) == {5.0, 6.0 + f.IDLE_MARGIN}
    assert 20 < starts.count(6.0 + f.IDLE_MARGIN) < 90  # IDLE_SHARE
    # A pause later than the next fault's time is not waited for.
    assert {schedule.start_time(20.0, 5.0, traffic) for _ in range(50)} == {20.0}


def test_traffic_alternates_bursts_and_pauses_some_of_them_long():
    traffic = Traffic.seeded(random.Random(2), 120.0)
    pauses = traffic.pauses
    assert pauses == Traffic.seeded(random.Random(2), 120.0).pauses
    assert all(0 < p.start < p.end for p in pauses) and pauses[0].start >= 1.0
    assert all(a.end < b.start for a, b in zip(pauses, pauses[1:]))
    assert any(p.long for p in pauses) and any(not p.long for p in pauses)
    assert all(p.end - p.start >= LONG_PAUSE[0] for p in pauses if p.long)
    middle = pauses[0].start + 0.05
    assert traffic.pause_at(middle) == pauses[0] and traffic.pause_at(0.0) is None
    first_long = next(p for p in pauses if p.long)
    assert traffic.next_long_pause(0.0) == first_long
    assert Traffic.none().pause_at(5.0) is None


# ---- the injector, on a fake clock ----------------------------------------------------------------


class FakeCluster:
    def __init__(self, clock):
        self.clock = clock
        self.signals = []  # (time, name, signal)
        self.down = set()
        self.spawned = []

    def send(self, name, sig):
        self.signals.append((self.clock.seconds(), name, sig))
        if sig == signal.SIGKILL:
            self.down.add(name)

    def exited(self, name):
        return name in self.down

    def spawn(self, name):
        self.spawned.append((self.clock.seconds(), name))
        self.down.discard(name)

    def is_up(self, name):
        return name not in self.down

    def reap_unexpected(self):
        return []


def run_injector(seed, until):
    clock = Clock()
    cluster = FakeCluster(clock)

    async def leader():
        return 1

    injector = FaultInjector(clock, cluster, Schedule(seed), 5.0, clock.seconds, leader, lambda line: None)
    done = Deferred.fromCoroutine(injector.run(until))
    while not done.called:
        clock.advance(0.01)
    assert done.result is None
    return injector.faults, cluster


def test_the_injector_overlaps_the_hits_of_a_double_fault_and_waits_for_all_of_them():
    faults, cluster = run_injector(3, 80.0)
    assert len(faults) >= 8 and {fault.fault_class for fault in faults} == set(CLASSES)
    for fault in faults:
        starts = [h.at for h in fault.hits]
        assert min(starts) == fault.at and max(starts) - fault.at <= MAX_OFFSET + 0.02
        assert fault.back == max(h.back for h in fault.hits)
        for hit in fault.hits:
            assert hit.back - hit.at >= hit.pause - 0.02
    for before, after in zip(faults, faults[1:]):
        assert after.at >= before.back + f.MIN_GAP - 0.02
    doubles = [fault for fault in faults if len(fault.hits) == 2]
    assert doubles and all(len({h.target for h in fault.hits}) == 2 for fault in doubles)
    # Each hit ends on its own time: SIGCONT or restart per process.
    for fault in doubles:
        ends = {h.target: h.back for h in fault.hits}
        for name, back in ends.items():
            resumed = [t for t, n, s in cluster.signals if n == name and s == signal.SIGCONT and fault.at <= t <= back]
            restarted = [t for t, n in cluster.spawned if n == name and fault.at <= t <= back]
            assert resumed or restarted
