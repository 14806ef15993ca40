"""Leases and heartbeats as decisions (bazaar.core.lease), a failed candidacy withdrawn
(ReplicaCore.withdraw), and what a replica does with them, on a fake clock."""

from __future__ import annotations

import math
from types import SimpleNamespace
from pathlib import Path

from twisted.internet.task import Clock

from bazaar.config import Config
from bazaar.core.book import StockBook
from bazaar.core.chain import GENESIS
from bazaar.core.initiative import INTERVAL
from bazaar.core.lease import LEASE, FollowerLease, LeaderLease, Reachability
from bazaar.core.replica import Accepted, ReplicaCore, Stale
from bazaar.core.stock import DEFAULT_STOCKS, table_id
from bazaar.core.takeover import Candidacy, Lost, Refused, StandAgain
from bazaar.order.reach import PeerWatch
from bazaar.order.replica import Replica
from bazaar.order.store import OrderStore
from bazaar.v1 import order_pb2
from tests.unit.test_order_log import ManualCommitter, fired
from tests.unit.test_order_servicer import Channels


# ---- the leader's lease -------------------------------------------------------------------


def test_a_leader_holds_its_lease_from_the_send_time_of_a_majoritys_answers():
    lease = LeaderLease(["a", "b"], started=0.0, duration=0.45)
    assert not lease.holds(0.0), "no follower has answered yet"
    lease.acked("a", sent_at=1.0)
    assert lease.holds(1.44) and not lease.holds(1.45)
    lease.acked("b", sent_at=1.2)
    assert lease.expiry() == 1.2 + 0.45, "the newest majority counts"
    lease.acked("b", sent_at=0.5)
    assert lease.expiry() == 1.2 + 0.45, "a late answer to an older batch moves nothing back"


def test_answers_from_strangers_count_for_nothing():
    lease = LeaderLease(["a", "b"], started=0.0)
    lease.acked("intruder", sent_at=5.0)
    assert not lease.holds(5.0)


def test_a_leader_alone_always_holds_its_lease():
    assert LeaderLease([], started=0.0).holds(1e9)


def test_a_lease_lapses_one_lease_after_the_start_or_the_last_majority():
    lease = LeaderLease(["a", "b"], started=10.0, duration=0.45)
    assert not lease.lapsed(10.44), "a new leader gets one lease to hear from a majority"
    assert lease.lapsed(10.45)
    lease.acked("a", sent_at=10.4)
    assert not lease.lapsed(10.84) and lease.lapsed(10.85)
    assert lease.silent(10.85) == ["a", "b"]
    assert lease.silent(10.5) == ["b"]


def test_five_replicas_need_two_followers():
    lease = LeaderLease(["a", "b", "c", "d"], started=0.0, duration=1.0)
    lease.acked("a", sent_at=5.0)
    assert not lease.holds(5.0)
    lease.acked("b", sent_at=3.0)
    assert lease.expiry() == 4.0
    lease.add("e")
    assert lease.needed == 3


# ---- the follower's faith, and reachability ---------------------------------------------------


def test_a_follower_keeps_faith_for_a_lease_after_hearing_from_a_leader():
    lease = FollowerLease(duration=0.5)
    assert not lease.alive(0.0)
    lease.heard(3, 7, now=1.0)
    assert lease.alive(1.49) and not lease.alive(1.5)
    assert (lease.leader, lease.epoch) == (3, 7)
    lease.end()
    assert not lease.alive(1.1)


def test_reachable_peers_are_those_that_answered_a_call_sent_within_the_window():
    reach = Reachability(["b", "a", "a"], window=0.5)
    assert reach.peers == ("a", "b")
    reach.answered("a", sent_at=1.0)
    reach.answered("nobody", sent_at=1.0)
    assert reach.reachable(1.4) == ["a"]
    assert reach.reachable(1.5) == []
    assert reach.answered_at("a") == 1.0 and reach.answered_at("b") == -math.inf


def test_a_forgotten_peer_counts_again_only_for_calls_sent_since():
    reach = Reachability(["a", "b"], window=0.5)
    reach.answered("a", sent_at=1.0)
    reach.answered("b", sent_at=1.0)
    reach.forget(["a", "stranger"], now=1.2)
    assert reach.reachable(1.2) == ["b"] and reach.answered_at("a") == -math.inf
    reach.answered("a", sent_at=1.1)  # a late answer to a call sent before
    assert reach.reachable(1.2) == ["b"]
    reach.answered("a", sent_at=1.2)
    assert reach.reachable(1.3) == ["a", "b"]


def test_a_leader_reaches_the_followers_that_answer_it(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    sent = clock.seconds()
    clock.advance(0.05)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, sent, False)
    assert replica.reachability.reachable(clock.seconds()) == [FOLLOWERS[1]], "a refusal is an answer too"
    assert replica.reachability.answered_at(FOLLOWERS[1]) == sent


def test_the_peer_watch_checks_a_peer_unless_it_answered_another_call_within_the_interval():
    now = [10.0]
    reach = Reachability(["a", "b", "c"])
    reach.answered("a", 9.95)  # a heartbeat's answer, say
    reach.answered("b", 9.85)
    watch = PeerWatch(Clock(), None, reach, lambda: now[0])
    checked: list[str] = []

    def check(peer: str) -> None:  # sent now, answered at once
        checked.append(peer)
        watch._checked_at[peer] = now[0]
        reach.answered(peer, now[0])

    watch._check = check  # type: ignore[method-assign]
    watch._check_all()
    assert checked == ["b", "c"]
    now[0] += 0.099  # the next round comes a little early: our own checks' answers do not count
    reach.answered("a", 10.05)
    watch._check_all()
    assert checked == ["b", "c", "b", "c"]


# ---- a failed candidacy unseats no one ----------------------------------------------------------


def core() -> ReplicaCore:
    return ReplicaCore(StockBook(DEFAULT_STOCKS))


def test_a_withdrawn_candidacy_follows_the_leader_it_followed_before():
    follower = core()
    assert isinstance(follower.accept(-1, GENESIS, [], lambda i: None, -1, 3), Accepted)  # type: ignore[arg-type]
    assert follower.promise(4, own=True)
    assert isinstance(follower.accept(-1, GENESIS, [], lambda i: None, -1, 3), Stale), "refused while standing"  # type: ignore[arg-type]
    assert follower.withdraw(4)
    assert (follower.epoch, follower.floor) == (4, 3), "epoch 4 stays used up"
    assert isinstance(follower.accept(-1, GENESIS, [], lambda i: None, -1, 3), Accepted)  # type: ignore[arg-type]
    assert not follower.promise(4), "no candidate gets an epoch already stood for"


def test_a_promise_to_another_candidate_is_never_withdrawn():
    follower = core()
    assert follower.promise(1)
    assert not follower.withdraw(1)
    assert follower.floor == 1


def test_only_the_candidacy_under_way_is_withdrawn():
    candidate = core()
    assert candidate.promise(2, own=True)
    assert candidate.promise(3, own=True)  # stood again, higher
    assert not candidate.withdraw(2)
    assert candidate.withdraw(3) and candidate.floor == 0


def test_a_candidacy_that_won_is_not_withdrawn():
    candidate = core()
    assert candidate.promise(2, own=True)
    candidate.lead()
    assert not candidate.withdraw(2) and candidate.floor == 2


def test_a_refusal_because_a_leader_is_alive_loses_at_once_without_burning_epochs():
    candidate = core()
    candidacy = Candidacy(["a", "b"])
    candidate.promise(candidacy.stand(candidate) or 0, own=True)
    candidacy.answered("a", Refused(1, leader_alive=True))
    candidacy.answered("b", None)
    assert isinstance(candidacy.outcome(candidate), Lost)
    other = Candidacy(["a", "b"])
    candidate.promise(other.stand(candidate) or 0, own=True)
    other.answered("a", Refused(9))
    other.answered("b", None)
    assert isinstance(other.outcome(candidate), StandAgain)


def test_the_floor_survives_a_restart_but_a_candidacy_does_not(tmp_path: Path):
    config = Config(data_dir=tmp_path)
    store = OrderStore(tmp_path, table_id(config.stocks))
    replica = Replica(Clock(), config, 1, store, ManualCommitter(store), Channels(), lambda n: None)  # type: ignore[arg-type]
    replica.log.promise(1)
    replica.log.promise(2, own=True)
    replica.log._committer.flush()  # type: ignore[attr-defined]
    store.close()
    reopened = OrderStore(tmp_path, table_id(config.stocks))
    assert (reopened.epoch, reopened.floor) == (2, 1)


# ---- a replica, on a fake clock -------------------------------------------------------------------


def replica_at(tmp_path: Path, replica_id: int = 1) -> tuple[Replica, ManualCommitter, Clock]:
    config = Config(data_dir=tmp_path)
    store = OrderStore(tmp_path, table_id(config.stocks))
    committer = ManualCommitter(store)
    clock = Clock()
    replica = Replica(clock, config, replica_id, store, committer, Channels(), lambda n: None)  # type: ignore[arg-type]
    replica.ready = True
    return replica, committer, clock


FOLLOWERS = ["127.0.0.1:56894", "127.0.0.1:56895"]  # replicas 1 and 2, as configured by default


def lead(replica: Replica, committer: ManualCommitter):
    """Replica 3 leads epoch 1, its leader entry on disk, none of its followers heard from yet."""
    assert replica.core.promise(1)
    leadership = replica.begin_leading(FOLLOWERS)
    committer.flush()
    return leadership


def promise(replica: Replica, committer: ManualCommitter, epoch: int, candidate: int) -> tuple[bool, int, bool]:
    d = replica.promise(epoch, candidate)
    committer.flush()
    return fired(d)


def test_a_replica_promises_nothing_for_a_lease_after_it_starts(tmp_path: Path):
    # It may have answered a leader just before a restart: that leader may still count on it.
    replica, committer, clock = replica_at(tmp_path)
    assert promise(replica, committer, 1, candidate=3) == (False, 0, True)
    assert replica.describe().role == order_pb2.REPLICA_ROLE_STARTING, "not to be selected yet"
    clock.advance(LEASE)
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER
    assert promise(replica, committer, 1, candidate=3) == (True, 1, False)


def test_a_follower_refuses_other_candidates_while_its_leader_is_alive_but_not_that_leader(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path)
    clock.advance(LEASE)
    assert promise(replica, committer, 1, candidate=3)[0]
    written = replica.receive(-1, GENESIS, [], -1, 1, -1, leader_id=3)
    committer.flush()
    assert fired(written)[0] == order_pb2.PROPAGATE_STATUS_OK
    described = replica.describe()
    assert (described.leader_id, described.leader_epoch) == (3, 1)
    assert promise(replica, committer, 2, candidate=2) == (False, 1, True)
    assert promise(replica, committer, 2, candidate=3) == (True, 2, False), "its own leader may stand again"
    clock.advance(LEASE)
    assert replica.describe().leader_id == 0, "no leader heard within a lease"


def test_a_batch_refused_for_an_epoch_only_promised_does_not_say_replaced(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path)
    written = replica.receive(-1, GENESIS, [], -1, 3, -1, leader_id=3)  # it follows leader 3 of epoch 3
    committer.flush()
    assert fired(written)[0] == order_pb2.PROPAGATE_STATUS_OK
    clock.advance(LEASE)
    assert promise(replica, committer, 4, candidate=2)[0]
    written = replica.receive(-1, GENESIS, [], -1, 3, -1, leader_id=3)
    status, _, epoch, replaced = fired(written)
    assert (status, epoch, replaced) == (order_pb2.PROPAGATE_STATUS_STALE_EPOCH, 4, False)


def test_a_leader_without_a_majority_within_its_lease_steps_down(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    clock.advance(LEASE)
    leadership = lead(replica, committer)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    assert leadership.serving and replica.describe().role == order_pb2.REPLICA_ROLE_LEADER
    assert fired(replica.promise(2, 2)) == (False, 1, True), "a leader with its lease promises nothing"
    last_index = replica.assign_followers(FOLLOWERS)
    assert replica.leadership is leadership and last_index == 0, "assigned again, it changes nothing"
    clock.advance(0.3)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    clock.pump([0.1] * 4)  # heartbeats, every 0.1 s; nobody answers them
    assert replica.leadership is leadership, "the newest answer (sent at 0.8 s) keeps it leading until 1.25 s"
    clock.pump([0.1])
    assert replica.leadership is None and not replica.core.is_leader
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER


def test_a_follower_that_only_promised_a_newer_epoch_does_not_unseat_the_leader(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 5, clock.seconds(), False)
    assert replica.leadership is leadership
    assert not leadership.lease.holds(clock.seconds()), "but it renews nothing"
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, 1, 5, clock.seconds(), True)
    assert replica.leadership is None, "a follower of a newer leader's epoch: replaced"
    assert math.isfinite(replica.core.epoch) and replica.core.epoch == 5


def test_after_a_withdrawn_candidacy_the_leaders_batches_renew_its_faith(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path)
    clock.advance(LEASE)
    assert promise(replica, committer, 1, candidate=3)[0]
    assert replica.core.promise(2, own=True) and replica.core.withdraw(2)  # stood, lost
    written = replica.receive(-1, GENESIS, [], -1, 1, -1, leader_id=3)
    committer.flush()
    assert fired(written)[0] == order_pb2.PROPAGATE_STATUS_OK, "it follows the working leader again"
    assert replica.describe().leader_id == 3, "and keeps faith with it"
    assert promise(replica, committer, 3, candidate=2) == (False, 2, True), "so it promises no one else"


def test_no_candidate_is_the_unknown_leader_a_restarted_replica_keeps_faith_with(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    assert promise(replica, committer, 1, candidate=0) == (False, 0, True)
    assert promise(replica, committer, 1, candidate=-1) == (False, 0, True)


def test_followers_other_than_the_configured_replicas_are_refused(tmp_path: Path):
    replica, _, clock = replica_at(tmp_path, replica_id=1)
    clock.advance(LEASE)
    for followers in ([], ["127.0.0.1:56895"], ["127.0.0.1:56895", "127.0.0.1:56896", "10.0.0.9:1"]):
        try:
            replica.assign_followers(followers)
        except ValueError as e:
            assert "not the other configured replicas" in str(e)
        else:
            raise AssertionError(f"{followers} was taken")
    assert not replica.core.is_leader and replica.core.epoch == 0, "nothing changed"


def test_an_epoch_learned_from_a_follower_is_used_up_but_no_floor_after_a_restart(tmp_path: Path):
    replica, committer, _ = replica_at(tmp_path)
    replica.log.promise(1)
    replica.log.learn_epoch(5)  # perhaps an epoch a candidate only stood for
    committer.flush()
    replica.store.close()
    reopened = OrderStore(tmp_path, table_id(Config(data_dir=tmp_path).stocks))
    assert (reopened.epoch, reopened.floor) == (5, 1)


def test_a_leader_refused_for_a_lease_for_an_epoch_only_promised_stands_again_above_it(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
    clock.advance(LEASE / 2)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
    assert replica.leadership is leadership, "a newly won candidate may not have written to it yet"
    clock.advance(LEASE / 2)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
    assert replica.leadership is None and replica.core.epoch >= 4
    assert replica.describe().role == order_pb2.REPLICA_ROLE_CANDIDATE, "it stands again, above epoch 4"


def test_without_its_lease_a_leader_says_not_leader_rather_than_not_executed(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    leadership.follower_unreachable(FOLLOWERS[0])
    leadership.follower_unreachable(FOLLOWERS[1])
    from twisted.internet.defer import Deferred
    answer = Deferred.fromCoroutine(leadership.place("tesla", 1, 2, "k", clock.seconds() + 5))
    clock.advance(LEASE)  # the lease lapses while it waits for a majority
    clock.advance(1.0)
    assert fired(answer) == (order_pb2.REQUEST_STATUS_NOT_LEADER, -1)


def test_a_refusal_after_an_outage_starts_its_lease_anew(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
    leadership.follower_unreachable(FOLLOWERS[1])  # its link failed for a while
    for _ in range(6):  # a lease and more; the other follower keeps answering
        clock.advance(0.1)
        leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
    assert replica.leadership is leadership, "a new refusal, not one a lease old"


def test_a_leader_that_lost_its_majority_stands_again_once_it_reaches_one(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
    clock.pump([0.1] * 6)  # no answers: the lease lapses (frozen, or cut off, while no request came)
    assert replica.leadership is None
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER, "reaching nobody, it waits"
    replica.reachability.answered(FOLLOWERS[1], clock.seconds())
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_CANDIDATE, "with a majority, it stands again"


def test_a_leader_cut_off_does_not_stand_again_on_the_answers_its_lease_outlived(tmp_path: Path):
    # The reachability window (LEASE) outlasts the leader's lease (LEASE - MARGIN): without
    # forgetting, the silent followers would count for a moment after it steps down, and it
    # would stand against the candidate they are electing, holding requests meanwhile.
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    clock.advance(0.05)
    sent = clock.seconds()
    for follower in FOLLOWERS:
        leadership.follower_answered(follower, order_pb2.PROPAGATE_STATUS_OK, 0, 1, sent, False)
    clock.pump([0.05, 0.1, 0.1, 0.1, 0.1])  # nobody answers any more: the lease lapses at 0.5 s
    assert replica.leadership is None
    assert clock.seconds() < sent + LEASE, "within the window of the last answers"
    assert replica.reachability.reachable(clock.seconds()) == []
    replica.reachability.answered(FOLLOWERS[0], sent + 0.3)  # a late answer to an older check
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER, "it reaches nobody it has heard since"
    replica.reachability.answered(FOLLOWERS[0], clock.seconds())
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_CANDIDATE, "heard again, it stands"


def test_a_leader_that_lost_its_majority_follows_a_newer_leader_instead(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    lead(replica, committer)
    clock.pump([0.1] * 6)
    assert replica.leadership is None
    written = replica.receive(-1, GENESIS, [], -1, 2, -1, leader_id=2)  # replica 2 leads epoch 2 now
    committer.flush()
    assert fired(written)[0] != order_pb2.PROPAGATE_STATUS_STALE_EPOCH
    replica.reachability.answered(FOLLOWERS[0], clock.seconds())
    replica.reachability.answered(FOLLOWERS[1], clock.seconds())
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER and replica.describe().leader_id == 2


def test_a_leader_whose_attempt_to_stand_again_fails_stands_again_on_its_own(tmp_path: Path, monkeypatch):
    # Without that, with no request to make a front end select, nobody would lead.
    attempts: list[float] = []

    async def lose(replica: Replica, followers: list[str], generation: int) -> bool:
        attempts.append(clock.seconds())
        return False

    monkeypatch.setattr("bazaar.order.replica.take_over", lose)
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    leadership = lead(replica, committer)
    for _ in range(2):
        leadership.follower_answered(FOLLOWERS[0], order_pb2.PROPAGATE_STATUS_OK, 0, 1, clock.seconds(), False)
        leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
        clock.advance(LEASE / 2)
    leadership.follower_answered(FOLLOWERS[1], order_pb2.PROPAGATE_STATUS_STALE_EPOCH, -1, 4, clock.seconds(), False)
    assert replica.leadership is None and attempts == [LEASE], "it stood again above epoch 4, and lost"
    replica.reachability.answered(FOLLOWERS[0], clock.seconds())
    replica.tick()
    assert len(attempts) == 1, "each candidacy gets its interval"
    clock.advance(INTERVAL)
    replica.reachability.answered(FOLLOWERS[0], clock.seconds())
    replica.tick()
    assert attempts == [LEASE, LEASE + INTERVAL]


def test_a_replica_that_never_led_does_not_stand_on_its_own(tmp_path: Path):
    replica, _, clock = replica_at(tmp_path, replica_id=2)
    clock.advance(10.0)
    replica.reachability.answered(FOLLOWERS[0], clock.seconds())
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER and replica.core.epoch == 0


def test_a_leader_that_promised_a_candidate_gives_it_an_interval_before_standing_against_it(tmp_path: Path):
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    lead(replica, committer)
    clock.advance(LEASE)  # its lease lapsed unrenewed: it may promise
    assert promise(replica, committer, 2, candidate=2)[0] and replica.leadership is None
    replica.reachability.answered(FOLLOWERS[1], clock.seconds())
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_FOLLOWER, "the candidate may still win"
    clock.advance(INTERVAL)
    replica.reachability.answered(FOLLOWERS[1], clock.seconds())
    replica.tick()
    assert replica.describe().role == order_pb2.REPLICA_ROLE_CANDIDATE, "it never led: stand again"


def test_the_leaders_own_disk_catching_up_asks_the_catalog_feed_again(tmp_path: Path):
    """Committed trades may reach a majority before the leader's disk, which the catalog feed
    reads when its window misses: once the disk has them, the feed looks again, even if the
    commit point did not move."""
    replica, committer, clock = replica_at(tmp_path, replica_id=3)
    clock.advance(LEASE)
    leadership = lead(replica, committer)
    kicks: list[None] = []
    leadership._catalog_link = SimpleNamespace(kick=lambda: kicks.append(None), close=lambda: None)  # type: ignore[assignment]
    leadership.durable()
    assert kicks == [None]
