"""TradePlacer: attempts of one trade on the current leader, under one key, within the request's
time; with scripted replicas, a real LeaderTracker and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from twisted.internet import defer, task
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from bazaar.config import Address
from bazaar.core.outcome import Final
from bazaar.frontend.backends import NotLeader, PeerUnavailable, PlacedOrder
from bazaar.frontend.leader import LeaderTracker
from bazaar.frontend.trading import RETRY_PAUSE, TradePlacer, TradeResult
from bazaar.v1 import order_pb2, trade_pb2
from tests.unit.replica_views import view_of

PROBE = 0.3
ASSIGN = 1.0
RPC = 1.0
REQUEST = 2.5
STEP = 0.01
OK, REFUSED = order_pb2.REQUEST_STATUS_OK, order_pb2.REQUEST_STATUS_NOT_ENOUGH_STOCK


@dataclass(frozen=True)
class Call:
    key: str
    timeout: float
    at: float


class Replica:
    """An order replica whose answers to trades follow a script.

    Each request takes the next of `answers` (then `default`):
    "ok" / "refused": a definite answer at once (an OK numbers the trade 100 + the replica id);
    "not leader": NotLeader at once; "unavailable": no majority, at once;
    "in doubt": IN_DOUBT once the call's deadline is up (a real leader waits for a majority);
    "fails": the call fails (PeerUnavailable) 0.2 s in;
    "not sent": the call fails at once without reaching the replica (no connection);
    "hangs": no answer; the call fails at its deadline, as gRPC's would.
    """

    def __init__(self, replica_id: int, clock: task.Clock, journal: list) -> None:
        self.id = replica_id
        self.journal = journal  # (replica id, Call) of the cluster's calls, in order
        self.address = Address("10.0.0.1", 7000 + replica_id)
        self.clock = clock
        self.healthy = True
        self.hang_probes = False
        self.refuse_leadership = False
        self.answers: list[str] = []
        self.default = "ok"
        self.cancelled = 0

    def probe(self) -> Deferred:
        return Deferred() if self.hang_probes else defer.succeed(self.healthy)

    def describe(self, wait_for_ready: bool = True) -> Deferred:
        return self.probe().addCallback(lambda healthy: view_of(self.id, healthy))

    def assign_followers(self, followers: list[str]) -> Deferred:
        if not self.healthy or self.refuse_leadership:
            return defer.fail(PeerUnavailable(str(self.address), "UNAVAILABLE"))
        return defer.succeed(-1)

    def request(self, name: str, quantity: int, trade_type: int, key: str, timeout: float) -> Deferred:
        self.journal.append((self.id, Call(key, timeout, self.clock.seconds())))
        answer = self.answers.pop(0) if self.answers else self.default
        down = PeerUnavailable(str(self.address), "UNAVAILABLE")
        if answer == "ok":
            return defer.succeed(PlacedOrder(OK, 100 + self.id))
        if answer == "refused":
            return defer.succeed(PlacedOrder(REFUSED, 0))
        if answer == "unavailable":
            return defer.succeed(PlacedOrder(order_pb2.REQUEST_STATUS_UNAVAILABLE, 0))
        if answer == "not leader":
            return defer.fail(NotLeader(f"replica {self.id}"))
        if answer == "in doubt":
            return self._later(timeout, PlacedOrder(order_pb2.REQUEST_STATUS_IN_DOUBT, 0))
        if answer == "fails":
            return self._later(0.2, down)
        if answer == "not sent":
            return defer.fail(PeerUnavailable(str(self.address), "UNAVAILABLE", sent=False))
        assert answer == "hangs", answer
        return self._later(timeout, PeerUnavailable(str(self.address), "DEADLINE_EXCEEDED"))

    def _later(self, seconds: float, result: object) -> Deferred:
        def cancel(_: Deferred) -> None:
            self.cancelled += 1
            timer.cancel()

        d: Deferred = Deferred(canceller=cancel)
        fire = d.errback if isinstance(result, Exception) else d.callback
        timer = self.clock.callLater(seconds, fire, result)
        return d


class Cluster:
    def __init__(self, request_timeout: float = REQUEST, ids=(1, 2, 3)) -> None:
        self.clock = task.Clock()
        self.journal: list[tuple[int, Call]] = []
        self.replicas = {i: Replica(i, self.clock, self.journal) for i in ids}
        self.leaders = LeaderTracker(self.replicas, self.clock, PROBE, ASSIGN)
        self.placer = TradePlacer(self.leaders, self.clock, RPC, request_timeout)
        self.request_timeout = request_timeout

    def place(self, key: str = "k", fresh: bool = False) -> Deferred:
        """`fresh`: a key the front end made for this request, not the client's."""
        return Deferred.fromCoroutine(self.placer.place("tesla", 1, trade_pb2.TRADE_TYPE_BUY, key, fresh_key=fresh))

    def run(self, seconds: float) -> None:
        until = self.clock.seconds() + seconds
        while self.clock.seconds() < until:
            self.clock.advance(min(STEP, until - self.clock.seconds()))

    def answer_at(self, d: Deferred, seconds: float):
        """`d`'s result, which must come `seconds` from now (give or take a step), not before."""
        self.run(seconds - STEP)
        assert not d.called
        self.run(2 * STEP)
        return outcome(d)

    def calls(self) -> list[tuple[int, Call]]:
        return list(self.journal)

    def keys(self) -> set[str]:
        return {call.key for _, call in self.calls()}


def outcome(d: Deferred):
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


def answered_by(replica_id: int) -> TradeResult:
    return TradeResult(Final.ANSWERED, PlacedOrder(OK, 100 + replica_id))


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_the_leaders_answer_at_once(cluster):
    assert outcome(cluster.place()) == answered_by(3)
    assert [(i, c.key) for i, c in cluster.calls()] == [(3, "k")]


def test_a_refusal_is_a_definite_answer_too(cluster):
    cluster.replicas[3].default = "refused"
    assert outcome(cluster.place()) == TradeResult(Final.ANSWERED, PlacedOrder(REFUSED, 0))
    assert len(cluster.calls()) == 1


def test_a_leader_failing_mid_call_is_replaced_and_the_trade_redone_under_the_same_key(cluster):
    cluster.replicas[3].answers = ["fails"]
    d = cluster.place("order-17")
    cluster.replicas[3].healthy = False  # it crashed: the selection that follows leaves it out
    cluster.run(0.2)
    assert outcome(d) == answered_by(2)
    assert [(i, c.key) for i, c in cluster.calls()] == [(3, "order-17"), (2, "order-17")]
    assert cluster.leaders.current.replica_id == 2


def test_a_frozen_leader_is_left_after_its_health_check_fails_not_at_the_calls_deadline(cluster):
    cluster.replicas[3].answers = ["hangs"]
    d = cluster.place()
    cluster.replicas[3].hang_probes = True  # frozen (SIGSTOP): its health check hangs too
    # A probe deadline before it is probed, another for the probe to time out.
    assert cluster.answer_at(d, 2 * PROBE) == answered_by(2)
    assert cluster.replicas[3].cancelled == 1  # the frozen call is not left running
    assert cluster.keys() == {"k"}


def test_not_leader_then_success_on_the_replica_selected_again(cluster):
    cluster.replicas[3].answers = ["not leader"]  # e.g. it restarted and lost its assignment
    assert outcome(cluster.place()) == answered_by(3)  # at once: no time passes
    assert [(i, c.key) for i, c in cluster.calls()] == [(3, "k"), (3, "k")]
    assert cluster.leaders.selections == 2


def test_not_leader_then_another_replica_takes_over(cluster):
    assert outcome(cluster.leaders.leader()).replica_id == 3
    cluster.replicas[3].answers = ["not leader"]
    cluster.replicas[3].refuse_leadership = True  # it cannot be assigned again
    assert outcome(cluster.place()) == answered_by(2)
    assert [i for i, _ in cluster.calls()] == [3, 2]
    assert cluster.keys() == {"k"}


def test_in_doubt_then_ok_when_asked_again(cluster):
    cluster.replicas[3].answers = ["in doubt"]
    d = cluster.place()
    assert cluster.answer_at(d, RPC) == answered_by(3)
    assert [(i, c.key) for i, c in cluster.calls()] == [(3, "k"), (3, "k")]
    assert cluster.leaders.selections == 1  # in doubt is not a leader failure


def test_in_doubt_until_the_deadline_is_unknown(cluster):
    cluster.replicas[3].default = "in doubt"
    d = cluster.place()
    assert cluster.answer_at(d, REQUEST) == TradeResult(Final.UNKNOWN)
    calls = [c for _, c in cluster.calls()]
    assert [c.timeout for c in calls] == pytest.approx([RPC, RPC, REQUEST - 2 * RPC])
    assert cluster.keys() == {"k"}


def test_unavailable_at_once_is_final_without_a_retry(cluster):
    cluster.replicas[3].default = "unavailable"
    assert outcome(cluster.place()) == TradeResult(Final.UNAVAILABLE)  # no time passes
    assert len(cluster.calls()) == 1
    assert cluster.leaders.selections == 1


def test_unavailable_after_an_attempt_in_doubt_keeps_asking_until_an_answer(cluster):
    cluster.replicas[3].answers = ["in doubt", "unavailable", "unavailable"]
    d = cluster.place()
    # A pause after each "unavailable".
    assert cluster.answer_at(d, RPC + 2 * RETRY_PAUSE) == answered_by(3)
    assert len(cluster.calls()) == 4 and cluster.keys() == {"k"}


def test_unavailable_after_an_attempt_in_doubt_until_the_deadline_is_unknown(cluster):
    cluster.replicas[3].answers = ["in doubt"]
    cluster.replicas[3].default = "unavailable"
    d = cluster.place()
    assert cluster.answer_at(d, REQUEST) == TradeResult(Final.UNKNOWN)
    # A pause between attempts, not a busy loop on a leader without a majority.
    starts = [c.at for _, c in cluster.calls()][1:]
    assert all(b - a >= RETRY_PAUSE - 1e-9 for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("why", ["all down", "all refuse the assignment"])
def test_no_leader_at_all_is_unavailable_at_once(cluster, why):
    for replica in cluster.replicas.values():
        if why == "all down":
            replica.healthy = False
        else:
            replica.refuse_leadership = True
    assert outcome(cluster.place(fresh=True)) == TradeResult(Final.UNAVAILABLE)
    assert cluster.calls() == []


def test_no_leader_for_a_clients_key_is_unknown_at_the_deadline(cluster):
    """The client may have sent the key before (a retry after a 504), and that trade may still
    commit: with no leader to look the key up, nothing can be said for sure."""
    for replica in cluster.replicas.values():
        replica.healthy = False
    d = cluster.place("order-9")
    assert cluster.answer_at(d, REQUEST) == TradeResult(Final.UNKNOWN)
    assert cluster.calls() == []


def test_every_replica_refusing_to_lead_ends_at_once(cluster):
    for replica in cluster.replicas.values():
        replica.default = "not leader"  # each accepts the assignment, then says it does not lead
    assert outcome(cluster.place(fresh=True)) == TradeResult(Final.UNAVAILABLE)  # no time passes
    assert len(cluster.calls()) <= len(cluster.replicas) + 1


def test_every_replica_refusing_to_lead_after_an_attempt_in_doubt_ends_at_the_deadline(cluster):
    cluster.replicas[3].answers = ["in doubt"]
    for replica in cluster.replicas.values():
        replica.default = "not leader"
    d = cluster.place()
    # Not a 503 at once: the first attempt may still commit.
    assert cluster.answer_at(d, REQUEST) == TradeResult(Final.UNKNOWN)
    assert len(cluster.calls()) < REQUEST / RETRY_PAUSE * (len(cluster.replicas) + 1)


def test_no_leader_after_an_attempt_in_doubt_ends_at_the_deadline_not_after():
    cluster = Cluster(request_timeout=0.95)
    cluster.replicas[3].answers = ["fails"]
    d = cluster.place()
    for replica in cluster.replicas.values():
        replica.hang_probes = True  # every selection from now on finds no one, slowly
    # The selection from 0.2 finds no one at 0.5; the next, from 0.6, is cut short by the
    # deadline at 0.95, and no pause after it may run past the deadline.
    assert cluster.answer_at(d, 0.95) == TradeResult(Final.UNKNOWN)


def test_the_call_gets_only_what_a_slow_selection_left_of_the_request():
    cluster = Cluster(request_timeout=0.8)  # shorter than an RPC's own deadline
    cluster.replicas[3].hang_probes = True  # the selection waits a probe deadline for it
    d = cluster.place()
    cluster.run(PROBE)
    [(replica_id, call)] = cluster.calls()
    assert replica_id == 2 and call.at == pytest.approx(PROBE)
    assert call.timeout == pytest.approx(0.8 - PROBE)
    assert outcome(d) == answered_by(2)


def test_the_timeout_passed_never_exceeds_the_time_left_across_leader_changes():
    cluster = Cluster(request_timeout=2.3)
    cluster.replicas[3].answers = ["in doubt", "fails"]
    cluster.replicas[1].default = "in doubt"
    d = cluster.place()
    cluster.run(RPC + STEP)
    cluster.replicas[3].healthy = False  # it fails its second call and is down
    cluster.replicas[2].hang_probes = True  # the next selection waits on it, then picks 1
    cluster.run(2.3)
    assert outcome(d) == TradeResult(Final.UNKNOWN)
    calls = cluster.calls()
    assert [i for i, _ in calls] == [3, 3, 1]
    for _, call in calls:
        assert call.timeout <= RPC
        assert call.at + call.timeout <= 2.3 + 1e-9


def test_a_client_hanging_up_cancels_the_call_and_nothing_is_redone(cluster):
    cluster.replicas[3].default = "hangs"
    d = cluster.place()
    cluster.run(PROBE)  # the leader is probed (healthy) while the call runs
    d.cancel()
    failure = outcome(d)
    assert isinstance(failure, Failure) and failure.check(CancelledError)
    assert cluster.replicas[3].cancelled == 1
    cluster.run(REQUEST)
    assert len(cluster.calls()) == 1
    assert cluster.leaders.current.replica_id == 3  # a hang-up is not a leader failure


def test_a_call_that_never_reached_the_leader_leaves_nothing_in_doubt(cluster):
    """The leader is dead (no connection), and no other replica can lead: nothing can be
    pending anywhere, so the answer is a prompt 503, not a 504 at the deadline."""
    cluster.replicas[3].default = "not sent"
    for i in (1, 2):
        cluster.replicas[i].refuse_leadership = True
    assert outcome(cluster.place(fresh=True)) == TradeResult(Final.UNAVAILABLE)  # no time passes
    assert {i for i, _ in cluster.calls()} == {3}


def test_a_call_that_failed_after_it_was_sent_leaves_the_trade_in_doubt(cluster):
    cluster.replicas[3].answers = ["fails"]
    for i in (1, 2):
        cluster.replicas[i].refuse_leadership = True
    d = cluster.place()
    cluster.replicas[3].healthy = False
    assert cluster.answer_at(d, REQUEST) == TradeResult(Final.UNKNOWN)
