"""Leader choice as pure decisions: a working leader adopted, else the highest replica that
can lead; bounded waits; generations against stale failures."""

import pytest

from bazaar.core.leader_selection import (
    Assign,
    Leader,
    LeaderSelection,
    NoLeader,
    PATIENCE,
    ProbeAgain,
    ReplicaView,
    SelectionError,
)

ALL = frozenset(range(1, 10))


def views(healthy, **special):
    """Ready followers that reach every replica, for the ids in `healthy`; `special` maps
    "r<id>" to a ReplicaView of its own."""
    out = {i: ReplicaView(i, reachable=ALL - {i}) for i in healthy}
    out.update({int(k[1:]): v for k, v in special.items()})
    return out


def elect(selection, healthy, refusing=()):
    """Run a whole round: `healthy` answer probes, `refusing` fail AssignFollowers."""
    selection.start()
    decision = selection.probed(views(healthy))
    if isinstance(decision, ProbeAgain):  # the others claim to reach replicas that do not answer
        decision = selection.probed(views(healthy), now=PATIENCE)
    offers = []
    while isinstance(decision, Assign):
        offers.append(decision)
        decision = selection.assigned(decision.leader_id not in refusing)
    return decision, offers


def test_needs_replicas():
    with pytest.raises(ValueError):
        LeaderSelection([])


def test_starts_without_a_leader():
    selection = LeaderSelection([1, 2, 3])
    assert selection.current is None
    assert not selection.selecting


def test_start_probes_every_replica_highest_first():
    selection = LeaderSelection([2, 3, 1, 3])
    assert selection.start() == (3, 2, 1)
    assert selection.selecting


def test_highest_healthy_id_leads_and_the_other_healthy_ones_follow():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    assert selection.probed(views([1, 3, 2])) == Assign(3, (2, 1))
    leader = selection.assigned(True)
    assert leader == Leader(3, selection.generation)
    assert selection.current == leader
    assert not selection.selecting


def test_an_unhealthy_replica_does_not_lead_but_still_follows():
    # The leader keeps trying to reach it, so it catches up once it answers again.
    selection = LeaderSelection([1, 2, 3])
    decision, offers = elect(selection, healthy=[1, 2])
    assert offers == [Assign(2, (3, 1))]
    assert decision.replica_id == 2


def test_a_single_healthy_replica_leads_the_others():
    selection = LeaderSelection([1, 2, 3])
    decision, offers = elect(selection, healthy=[1])
    assert offers == [Assign(1, (3, 2))]
    assert decision.replica_id == 1


def test_unknown_ids_in_probe_results_are_ignored():
    selection = LeaderSelection([1, 2])
    decision, offers = elect(selection, healthy=[7, 1])
    assert offers == [Assign(1, (2,))]


def test_replica_that_refuses_leadership_is_skipped_but_still_follows():
    selection = LeaderSelection([1, 2, 3])
    decision, offers = elect(selection, healthy=[1, 2, 3], refusing={3})
    assert offers == [Assign(3, (2, 1)), Assign(2, (3, 1))]
    assert decision.replica_id == 2


def test_no_healthy_replica_means_no_leader():
    selection = LeaderSelection([1, 2, 3])
    decision, offers = elect(selection, healthy=[])
    assert isinstance(decision, NoLeader)
    assert offers == []
    assert selection.current is None
    assert not selection.selecting


def test_all_refusing_means_no_leader():
    selection = LeaderSelection([1, 2])
    decision, offers = elect(selection, healthy=[1, 2], refusing={1, 2})
    assert isinstance(decision, NoLeader)
    assert [o.leader_id for o in offers] == [2, 1]
    assert not selection.selecting


def test_a_round_can_follow_a_round_that_found_none():
    selection = LeaderSelection([1, 2])
    elect(selection, healthy=[])
    decision, _ = elect(selection, healthy=[1])
    assert decision.replica_id == 1


def test_each_election_gets_a_new_generation():
    selection = LeaderSelection([1, 2, 3])
    first, _ = elect(selection, healthy=[3])
    second, _ = elect(selection, healthy=[3])
    assert first.replica_id == second.replica_id
    assert second.generation > first.generation
    assert first != second


def test_failure_of_the_current_leader_drops_it():
    selection = LeaderSelection([1, 2, 3])
    leader, _ = elect(selection, healthy=[1, 2, 3])
    before = selection.generation
    assert selection.failed(leader)
    assert selection.current is None
    assert selection.generation > before


def test_failure_reported_twice_drops_the_leader_once():
    selection = LeaderSelection([1, 2, 3])
    leader, _ = elect(selection, healthy=[1, 2, 3])
    assert selection.failed(leader)
    assert not selection.failed(leader)


def test_stale_failure_does_not_drop_the_newer_leader():
    """Requests that failed against the old leader just retry on the new one."""
    selection = LeaderSelection([1, 2, 3])
    old, _ = elect(selection, healthy=[1, 2, 3])
    selection.failed(old)
    new, _ = elect(selection, healthy=[1, 2])
    assert not selection.failed(old)
    assert selection.current == new


def test_stale_failure_of_a_reelected_replica_is_ignored():
    """Same replica id, newer generation: the old failure says nothing about the new term."""
    selection = LeaderSelection([1, 2, 3])
    old, _ = elect(selection, healthy=[3])
    selection.failed(old)
    new, _ = elect(selection, healthy=[3])
    assert new.replica_id == old.replica_id
    assert not selection.failed(old)
    assert selection.current == new


def test_failure_during_a_round_is_ignored():
    selection = LeaderSelection([1, 2, 3])
    leader, _ = elect(selection, healthy=[3])
    selection.start()
    assert not selection.failed(leader)
    assert selection.selecting


def test_start_drops_the_current_leader():
    selection = LeaderSelection([1, 2])
    elect(selection, healthy=[2])
    selection.start()
    assert selection.current is None


def test_only_one_round_at_a_time():
    selection = LeaderSelection([1, 2])
    selection.start()
    with pytest.raises(SelectionError):
        selection.start()


def test_steps_out_of_order_are_refused():
    selection = LeaderSelection([1, 2])
    with pytest.raises(SelectionError):
        selection.probed(views([1]))
    with pytest.raises(SelectionError):
        selection.assigned(True)
    selection.start()
    with pytest.raises(SelectionError):
        selection.assigned(True)
    selection.probed(views([1, 2]))
    with pytest.raises(SelectionError):
        selection.probed(views([1, 2]))
    selection.assigned(True)
    with pytest.raises(SelectionError):
        selection.assigned(True)


def test_abort_ends_the_round_without_a_leader():
    selection = LeaderSelection([1, 2])
    selection.start()
    selection.probed(views([2]))
    decision = selection.abort("broken")
    assert decision == NoLeader("broken")
    assert not selection.selecting and selection.current is None
    leader, _ = elect(selection, healthy=[1])
    assert leader.replica_id == 1


def test_a_replica_that_leads_is_adopted_without_being_assigned():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    decision = selection.probed(views([1, 3], r2=ReplicaView(2, leading=True, epoch=4, reachable=ALL)))
    assert decision == Leader(2, selection.generation), "a working leader is never deposed"
    assert not selection.selecting


def test_a_replica_taking_over_is_adopted_so_requests_wait_for_it():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    decision = selection.probed(views([3], r1=ReplicaView(1, taking_over=True)))
    assert isinstance(decision, Leader) and decision.replica_id == 1


def test_of_two_leaders_the_newer_epoch_is_adopted():
    # The older one has not noticed yet; it steps down within its lease.
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    decision = selection.probed({3: ReplicaView(3, leading=True, epoch=5), 1: ReplicaView(1, leading=True, epoch=6)})
    assert decision.replica_id == 1


def test_a_replica_that_reaches_no_majority_is_not_offered_leadership():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    decision = selection.probed({3: ReplicaView(3), 2: ReplicaView(2, reachable=frozenset({1})),
                                 1: ReplicaView(1, reachable=frozenset({2}))})
    assert decision == Assign(2, (3, 1))
    assert decision.skipped == ("replica 3 reaches too few replicas to lead (reaches none)",)


def test_no_replica_reaching_a_majority_is_no_leader_at_once_saying_why():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    decision = selection.probed({3: ReplicaView(3), 2: None, 1: None})
    assert isinstance(decision, NoLeader)
    assert decision.reason == ("no order replica can lead: replica 3 reaches too few replicas to lead "
                               "(reaches none); replica 2 did not answer; replica 1 did not answer")


def test_while_replicas_follow_a_leader_it_cannot_use_the_round_waits_then_gives_up():
    # The leader died (its followers' faith lapses within a lease), or it lives but this
    # front end cannot reach it: then it is not deposed.
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    following = views([1, 2], r1=ReplicaView(1, leader_id=3, reachable=ALL), r2=ReplicaView(2, leader_id=3, reachable=ALL))
    for now in (0.0, 0.5, PATIENCE - 0.01):
        assert selection.probed(following, now) == ProbeAgain("replica 2 still follows leader 3")
    decision = selection.probed(following, PATIENCE)
    assert isinstance(decision, NoLeader) and "does not answer this front end" in decision.reason


def test_once_the_dead_leaders_lease_lapses_the_highest_follower_leads():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    assert isinstance(selection.probed(views([1], r2=ReplicaView(2, leader_id=3, reachable=ALL))), ProbeAgain)
    decision = selection.probed(views([1, 2]))
    assert decision == Assign(2, (3, 1)) and decision.skipped == ("replica 3 did not answer",)


def test_before_its_first_leader_a_front_end_waits_for_a_higher_replica_still_starting():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    starting = views([1, 2], r3=ReplicaView(3, ready=False, reachable=ALL))
    assert selection.probed(starting) == ProbeAgain("replica 3 is starting")
    assert selection.probed(views([1, 2, 3])) == Assign(3, (2, 1))


def test_the_wait_for_a_starting_replica_is_bounded():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    starting = views([1, 2], r3=ReplicaView(3, ready=False, reachable=ALL))
    for now in (0.0, 0.5, PATIENCE - 0.01):
        assert isinstance(selection.probed(starting, now), ProbeAgain)
    decision = selection.probed(starting, PATIENCE)
    assert decision == Assign(2, (3, 1)) and decision.skipped == ("replica 3 is starting (catching up)",)


def test_a_lower_replica_starting_is_not_waited_for():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    assert selection.probed(views([3, 2], r1=ReplicaView(1, ready=False))) == Assign(3, (2, 1))


def test_once_it_has_had_a_leader_a_front_end_never_waits_for_a_starting_replica():
    selection = LeaderSelection([1, 2, 3])
    leader, _ = elect(selection, healthy=[1, 2, 3])
    selection.failed(leader)
    selection.start()
    decision = selection.probed(views([1, 2], r3=ReplicaView(3, ready=False, reachable=ALL)))
    assert isinstance(decision, Assign) and decision.leader_id == 2


def test_a_candidate_reaching_its_majority_only_through_a_silent_replica_waits_for_it():
    # The leader (3) is cut from its followers; replica 2 was healed a moment ago and its
    # channel from this front end still reconnects. Offering 1 now would fail: 2 still keeps
    # faith with 3 and refuses 1's promise.
    selection = LeaderSelection([1, 2, 3])
    selection.start(now=0.0)
    cut_leader = ReplicaView(3)  # stepped down: it reaches no one
    first = {3: cut_leader, 2: None, 1: ReplicaView(1, reachable=frozenset({2}))}
    assert isinstance(selection.probed(first, now=0.0), ProbeAgain)
    following = {3: cut_leader, 2: ReplicaView(2, leader_id=3, reachable=frozenset({1})),
                 1: ReplicaView(1, reachable=frozenset({2}))}
    assert isinstance(selection.probed(following, now=0.1), ProbeAgain), "2 answers: it follows 3"
    lapsed = {3: cut_leader, 2: ReplicaView(2, reachable=frozenset({1})), 1: ReplicaView(1, reachable=frozenset({2}))}
    assert selection.probed(lapsed, now=0.5) == Assign(2, (3, 1))


def test_the_wait_for_a_silent_replica_is_bounded():
    selection = LeaderSelection([1, 2, 3])
    selection.start(now=0.0)
    silent = {3: None, 2: None, 1: ReplicaView(1, reachable=frozenset({2, 3}))}
    assert isinstance(selection.probed(silent, now=PATIENCE - 0.01), ProbeAgain)
    assert selection.probed(silent, now=PATIENCE) == Assign(1, (3, 2)), "then it tries what it has"


def test_a_candidate_that_reaches_an_answering_majority_is_offered_at_once():
    selection = LeaderSelection([1, 2, 3])
    selection.start(now=0.0)
    answered = {3: None, 2: ReplicaView(2, reachable=frozenset({1, 3})), 1: ReplicaView(1, reachable=frozenset({2}))}
    assert selection.probed(answered, now=0.0) == Assign(2, (3, 1))
