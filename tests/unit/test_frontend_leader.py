"""LeaderTracker: concurrent probes, one shared selection, bounded retries, with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from bazaar.config import Address
from bazaar.core.leader_selection import PATIENCE, ReplicaView
from bazaar.frontend.backends import NotLeader, PeerUnavailable
from bazaar.frontend.leader import LeaderTracker, NoLeaderAvailable
from tests.unit.replica_views import view_of

PROBE = 0.3
ASSIGN = 2.0


class Replica:
    def __init__(self, replica_id: int) -> None:
        self.id = replica_id
        self.address = Address("10.0.0.1", 7000 + replica_id)
        self.probe_answers: list[Deferred] = []
        self.assignments: list[list[str]] = []
        self.assign_result: object = None  # None: accept; an exception: fail with it; "hang"

    def probe(self) -> Deferred:
        d: Deferred = Deferred()
        self.probe_answers.append(d)
        return d

    def answer(self, healthy: bool) -> None:
        self.probe_answers.pop(0).callback(healthy)

    def describe(self, wait_for_ready: bool = True) -> Deferred:
        return self.probe().addCallback(lambda healthy: view_of(self.id, healthy))

    def assign_followers(self, followers: list[str]) -> Deferred:
        self.assignments.append(followers)
        if self.assign_result == "hang":
            return Deferred()
        if isinstance(self.assign_result, BaseException):
            raise self.assign_result
        return defer.succeed(-1)


def outcome(d: Deferred):
    """The result (or Failure) `d` has fired with, left in place for later callers."""
    box: list = []

    def keep(result):
        box.append(result)
        return None if isinstance(result, Failure) else result  # a Failure is handled here

    d.addBoth(keep)
    assert box, "not fired"
    return box[0]


@pytest.fixture
def replicas():
    return {i: Replica(i) for i in (1, 2, 3)}


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def tracker(replicas, clock):
    return LeaderTracker(replicas, clock, PROBE, ASSIGN)


def answer_all(replicas, healthy=(1, 2, 3)):
    for replica in replicas.values():
        replica.answer(replica.id in healthy)


def test_all_replicas_are_probed_at_once(tracker, replicas):
    d = tracker.leader()
    assert [len(r.probe_answers) for r in replicas.values()] == [1, 1, 1]
    answer_all(replicas)
    leader = outcome(d)
    assert leader.replica_id == 3
    assert tracker.address_of(leader) == Address("10.0.0.1", 7003)
    assert sorted(replicas[3].assignments[0]) == ["10.0.0.1:7001", "10.0.0.1:7002"]


def test_the_highest_healthy_replica_wins_whatever_order_probes_answer(tracker, replicas):
    d = tracker.leader()
    replicas[1].answer(True)
    replicas[2].answer(True)
    assert not d.called  # 3 has not answered yet
    replicas[3].answer(False)
    assert outcome(d).replica_id == 2
    assert replicas[2].assignments == [["10.0.0.1:7003", "10.0.0.1:7001"]]


def test_current_leader_is_returned_without_probing(tracker, replicas):
    d = tracker.leader()
    answer_all(replicas)
    first = outcome(d)
    assert outcome(tracker.leader()) == first
    assert tracker.selections == 1


def test_hung_probes_count_as_down_after_the_probe_deadline(tracker, replicas, clock):
    d = tracker.leader()
    replicas[1].answer(True)
    clock.advance(PROBE - 0.01)
    assert not d.called
    clock.advance(0.01)
    # Replica 1 says it reaches 2 and 3, which do not answer here: the selection asks again,
    # for a bounded time, before offering leadership to a replica whose majority it cannot see.
    while not d.called and clock.seconds() < 5:
        while replicas[1].probe_answers:
            replicas[1].answer(True)
        clock.advance(0.05)
    assert PATIENCE <= clock.seconds() < PATIENCE + 2 * PROBE
    assert outcome(d).replica_id == 1
    assert replicas[1].assignments == [["10.0.0.1:7003", "10.0.0.1:7002"]]


def test_no_healthy_replica_fails_with_no_leader(tracker, replicas):
    d = tracker.leader()
    answer_all(replicas, healthy=())
    assert outcome(d).check(NoLeaderAvailable)
    assert tracker.current is None


def test_concurrent_waiters_share_one_selection(tracker, replicas):
    waiters = [tracker.leader() for _ in range(5)]
    assert tracker.selections == 1
    assert [len(r.probe_answers) for r in replicas.values()] == [1, 1, 1]
    answer_all(replicas)
    assert {outcome(w).replica_id for w in waiters} == {3}


def test_concurrent_waiters_all_get_the_no_leader_failure(tracker, replicas):
    waiters = [tracker.leader() for _ in range(3)]
    answer_all(replicas, healthy=())
    assert all(outcome(w).check(NoLeaderAvailable) for w in waiters)


def test_a_cancelled_waiter_does_not_cancel_the_selection(tracker, replicas):
    gone, staying = tracker.leader(), tracker.leader()
    gone.cancel()
    assert outcome(gone).check(CancelledError)
    answer_all(replicas)
    assert outcome(staying).replica_id == 3


def test_replica_that_cannot_be_assigned_is_skipped(tracker, replicas):
    replicas[3].assign_result = PeerUnavailable("r3", "UNAVAILABLE")
    d = tracker.leader()
    answer_all(replicas)
    assert outcome(d).replica_id == 2
    assert replicas[2].assignments == [["10.0.0.1:7003", "10.0.0.1:7001"]]


def test_hung_assignment_times_out_and_the_next_replica_is_offered(tracker, replicas, clock):
    replicas[3].assign_result = "hang"
    d = tracker.leader()
    answer_all(replicas)
    assert not d.called
    clock.advance(ASSIGN)
    assert outcome(d).replica_id == 2


def test_a_bug_in_a_step_ends_the_round_and_later_rounds_still_work(tracker, replicas):
    replicas[3].assign_result = TypeError("a bug")
    d = tracker.leader()
    with capturedLogs() as events:
        answer_all(replicas)
    assert outcome(d).check(NoLeaderAvailable)
    assert [e["log_failure"].type for e in events if "log_failure" in e] == [TypeError]
    replicas[3].assign_result = None
    d = tracker.leader()
    answer_all(replicas)
    assert outcome(d).replica_id == 3


def test_failure_of_the_current_leader_causes_one_new_selection(tracker, replicas):
    d = tracker.leader()
    answer_all(replicas)
    old = outcome(d)
    tracker.failed(old)
    first_retry = tracker.leader()
    tracker.failed(old)  # a second request noticing the same crash
    second_retry = tracker.leader()
    assert tracker.selections == 2
    answer_all(replicas, healthy=(1, 2))
    assert outcome(first_retry) == outcome(second_retry)
    assert outcome(first_retry).replica_id == 2


def test_stale_failure_after_a_new_election_keeps_the_new_leader(tracker, replicas):
    d = tracker.leader()
    answer_all(replicas)
    old = outcome(d)
    tracker.failed(old)
    d = tracker.leader()
    answer_all(replicas, healthy=(1, 2))
    new = outcome(d)
    tracker.failed(old)
    assert tracker.current == new
    assert outcome(tracker.leader()) == new
    assert tracker.selections == 2


def test_start_without_any_replica_answering_is_not_an_error(tracker, replicas, clock):
    d = tracker.start()
    clock.advance(PROBE)
    assert outcome(d) is None


def test_start_finds_the_leader(tracker, replicas):
    d = tracker.start()
    answer_all(replicas)
    assert outcome(d).replica_id == 3


# call_leader


class Leading:
    """Replicas whose probes answer at once, for call_leader tests."""

    def __init__(self, replica_id: int, healthy: bool = True) -> None:
        self.id = replica_id
        self.address = Address("10.0.0.1", 7000 + replica_id)
        self.healthy = healthy

    def probe(self) -> Deferred:
        return defer.succeed(self.healthy)

    def describe(self, wait_for_ready: bool = True) -> Deferred:
        return self.probe().addCallback(lambda healthy: view_of(self.id, healthy))

    def assign_followers(self, followers: list[str]) -> Deferred:
        return defer.succeed(-1) if self.healthy else defer.fail(PeerUnavailable("x", "down"))


def run(tracker: LeaderTracker, operation) -> object:
    return outcome(Deferred.fromCoroutine(tracker.call_leader(operation)))


def test_call_leader_redoes_the_operation_on_the_new_leader(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    calls: list[int] = []

    def operation(replica):
        calls.append(replica.id)
        if replica.id == 3:
            replica.healthy = False
            return defer.fail(PeerUnavailable("r3", "UNAVAILABLE"))
        return defer.succeed(f"done by {replica.id}")

    assert run(tracker, operation) == "done by 2"
    assert calls == [3, 2]


def test_call_leader_treats_not_leader_like_a_failure(clock):
    replicas = {i: Leading(i) for i in (1, 2)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    answers = [defer.fail(NotLeader("r2")), defer.succeed("ok")]
    assert run(tracker, lambda replica: answers.pop(0)) == "ok"
    assert tracker.selections == 2


def test_call_leader_gives_up_on_a_leader_that_always_refuses(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    calls: list[int] = []

    def operation(replica):
        calls.append(replica.id)
        return defer.fail(NotLeader(f"r{replica.id}"))

    result = run(tracker, operation)
    assert isinstance(result, Failure) and result.check(NoLeaderAvailable)
    assert len(calls) == 4  # one per replica, plus one


def test_call_leader_passes_other_errors_through_without_reselecting(clock):
    replicas = {1: Leading(1)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    result = run(tracker, lambda replica: defer.fail(ValueError("refused")))
    assert result.check(ValueError)
    assert tracker.selections == 1
    assert tracker.current is not None


def test_call_leader_without_any_leader_fails_promptly(clock):
    replicas = {i: Leading(i, healthy=False) for i in (1, 2)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    result = run(tracker, lambda replica: pytest.fail("no replica should be asked"))
    assert result.check(NoLeaderAvailable)


def test_a_waiter_cancelled_by_another_waiters_callback_is_fine(tracker, replicas):
    first, second, third = tracker.leader(), tracker.leader(), tracker.leader()

    def cancel_second(leader):
        second.cancel()
        return leader

    first.addCallback(cancel_second)
    answer_all(replicas)
    assert outcome(first).replica_id == 3
    assert outcome(second).check(CancelledError)
    assert outcome(third).replica_id == 3


def never_answered() -> tuple[Any, list[int], list[Deferred]]:
    """An operation whose calls never answer, and the replicas and calls it was asked for."""
    calls: list[int] = []
    pending: list[Deferred] = []

    def operation(replica):
        calls.append(replica.id)
        pending.append(Deferred())
        return pending[-1]

    return operation, calls, pending


def test_a_request_cancelled_by_its_client_is_not_a_leader_failure(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    operation, calls, _ = never_answered()
    request = Deferred.fromCoroutine(tracker.call_leader(operation))
    request.cancel()  # the client hung up while the leader was working
    assert outcome(request).check(CancelledError)
    assert calls == [3], "no redo elsewhere"
    assert tracker.selections == 1 and tracker.current.replica_id == 3


def test_a_client_hanging_up_during_a_probe_is_not_a_leader_failure(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    operation, calls, pending = never_answered()
    probes: list[Deferred] = []
    request = Deferred.fromCoroutine(tracker.call_leader(operation))
    # A slow leader: after a probe deadline it is probed, and the probe is still out when...
    replicas[3].probe = lambda: probes.append(Deferred(lambda d: d.callback(False))) or probes[-1]
    clock.advance(PROBE)
    assert len(probes) == 1
    request.cancel()  # ...the client hangs up (a cancelled probe answers False: unreachable)
    assert outcome(request).check(CancelledError)
    assert pending[0].called, "the call itself was cancelled"
    assert calls == [3], "no redo elsewhere"
    assert tracker.selections == 1 and tracker.current.replica_id == 3, "the leader was not failed"


def test_a_leader_that_hangs_and_fails_its_probe_is_left_and_the_request_redone(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    pending: list[Deferred] = []

    def operation(replica):
        if replica.id == 3:
            pending.append(Deferred())
            return pending[-1]  # frozen: never answers
        return defer.succeed(f"done by {replica.id}")

    request = Deferred.fromCoroutine(tracker.call_leader(operation))
    assert not request.called
    replicas[3].healthy = False  # its health check now fails too
    probes = []
    replicas[3].probe = lambda: probes.append(1) or defer.succeed(False)
    clock.advance(PROBE)
    assert outcome(request) == "done by 2"
    assert pending[0].called, "the hung call was cancelled"
    assert probes == [1], "the selection that followed did not probe it again"


def test_a_slow_but_healthy_leader_is_waited_for(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    slow: Deferred = Deferred()
    request = Deferred.fromCoroutine(tracker.call_leader(lambda replica: slow))
    for _ in range(5):
        clock.advance(PROBE)  # probed each time, healthy each time
    assert not request.called
    slow.callback("late but fine")
    assert outcome(request) == "late but fine"
    assert tracker.selections == 1


def test_a_call_that_fails_later_is_redone_on_the_new_leader(clock):
    replicas = {i: Leading(i) for i in (1, 2, 3)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    first: Deferred = Deferred()
    calls: list[int] = []

    def operation(replica):
        calls.append(replica.id)
        return first if replica.id == 3 else defer.succeed(f"done by {replica.id}")

    request = Deferred.fromCoroutine(tracker.call_leader(operation))
    replicas[3].healthy = False
    first.errback(PeerUnavailable("r3", "UNAVAILABLE"))  # the RPC fails after the wait began
    assert outcome(request) == "done by 2"
    assert calls == [3, 2]


# watched: what TradePlacer waits on each trade with


def watch(tracker: LeaderTracker, replica, pending: Deferred) -> Deferred:
    return Deferred.fromCoroutine(tracker.watched(replica, pending))


def test_watched_passes_the_calls_answer_and_failure_through_unchanged(clock):
    replicas = {1: Leading(1)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    assert outcome(watch(tracker, replicas[1], defer.succeed("answer"))) == "answer"
    assert outcome(watch(tracker, replicas[1], defer.fail(NotLeader("r1")))).check(NotLeader)


def test_watched_gives_up_on_a_replica_that_fails_its_health_check_mid_call(clock):
    replicas = {i: Leading(i) for i in (1, 2)}
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    call: Deferred = Deferred()
    d = watch(tracker, replicas[2], call)
    clock.advance(PROBE)  # probed while the call runs: healthy
    assert not d.called
    replicas[2].healthy = False
    clock.advance(PROBE)
    assert outcome(d).check(PeerUnavailable)
    assert call.called, "the call was cancelled"


class Described:
    """A replica that describes itself as told, recording how it was asked."""

    def __init__(self, replica_id: int, view: ReplicaView | None) -> None:
        self.id = replica_id
        self.address = Address("10.0.0.1", 7000 + replica_id)
        self.view = view
        self.asked: list[bool] = []  # wait_for_ready, per Describe
        self.assignments: list[list[str]] = []

    def probe(self) -> Deferred:
        return defer.succeed(self.view is not None)

    def describe(self, wait_for_ready: bool = True) -> Deferred:
        self.asked.append(wait_for_ready)
        return defer.succeed(self.view)

    def assign_followers(self, followers: list[str]) -> Deferred:
        self.assignments.append(followers)
        return defer.succeed(-1)


ALL_OTHERS = frozenset({1, 2, 3})


def test_a_front_end_adopts_the_replica_that_leads_and_assigns_no_one(clock):
    described = {
        1: Described(1, ReplicaView(1, leader_id=2, reachable=ALL_OTHERS - {1})),
        2: Described(2, ReplicaView(2, leading=True, epoch=7, reachable=ALL_OTHERS - {2})),
        3: Described(3, ReplicaView(3, leader_id=2, reachable=ALL_OTHERS - {3})),
    }
    tracker = LeaderTracker(described, clock, PROBE, ASSIGN)
    leader = outcome(tracker.leader())
    assert leader.replica_id == 2, "the working leader, not the highest id"
    assert all(r.assignments == [] for r in described.values()), "nobody deposed"


def test_while_a_dead_leaders_followers_keep_faith_the_front_end_asks_again_and_not_waiting_for_it(clock):
    described = {
        1: Described(1, ReplicaView(1, leader_id=3, reachable=frozenset({2}))),
        2: Described(2, ReplicaView(2, leader_id=3, reachable=frozenset({1}))),
        3: Described(3, None),  # crashed
    }
    tracker = LeaderTracker(described, clock, PROBE, ASSIGN)
    d = tracker.leader()
    assert not d.called
    for view in (ReplicaView(1, reachable=frozenset({2})), ReplicaView(2, reachable=frozenset({1}))):
        described[view.replica_id].view = view  # their faith lapses
    clock.advance(0.05)
    assert outcome(d).replica_id == 2
    assert described[2].assignments == [["10.0.0.1:7003", "10.0.0.1:7001"]]
    assert described[3].asked == [True, False], "asked again without waiting for its connection"


def test_selections_are_counted_by_why_they_started_and_how_they_ended(tracker, replicas):
    d = tracker.leader()
    answer_all(replicas)
    first = outcome(d)  # at start: 3 offered leadership and took it
    tracker.failed(first, unreachable=True)
    d = tracker.leader()
    answer_all(replicas, healthy=())  # none can lead
    assert isinstance(outcome(d).value, NoLeaderAvailable)
    d = tracker.leader()  # asked again after a round found none
    for replica in replicas.values():
        replica.probe_answers.pop(0).callback(True)
    second = outcome(d)
    tracker.failed(second)  # it said it does not lead
    tracker.failed(second)  # and a second request saw the same: still one round
    tracker.leader()
    assert dict(tracker.selection_causes) == {"start": 1, "unreachable": 1, "no_leader": 1, "not_leader": 1}
    assert dict(tracker.selection_results) == {"assigned": 2, "none": 1}


def test_a_replica_already_leading_is_adopted(replicas, clock):
    for replica in replicas.values():
        replica.describe = lambda wait_for_ready=True, i=replica.id: defer.succeed(
            ReplicaView(i, leading=i == 2, epoch=3, reachable=frozenset({1, 2, 3}) - {i}))
    tracker = LeaderTracker(replicas, clock, PROBE, ASSIGN)
    assert outcome(tracker.leader()).replica_id == 2
    assert dict(tracker.selection_results) == {"adopted": 1}
    assert replicas[2].assignments == [], "not offered anything"
