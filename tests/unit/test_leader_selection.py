"""Leader choice as pure decisions: highest healthy id first, generations against stale failures."""

import pytest

from bazaar.core.leader_selection import (
    Assign,
    Leader,
    LeaderSelection,
    NoLeader,
    PATIENT_ROUNDS,
    ProbeAgain,
    SelectionError,
)


def elect(selection, healthy, refusing=()):
    """Run a whole round: `healthy` answer probes, `refusing` fail AssignFollowers."""
    selection.start()
    decision = selection.probed(healthy)
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
    assert selection.probed([1, 3, 2]) == Assign(3, (2, 1))
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
        selection.probed([1])
    with pytest.raises(SelectionError):
        selection.assigned(True)
    selection.start()
    with pytest.raises(SelectionError):
        selection.assigned(True)
    selection.probed([1, 2])
    with pytest.raises(SelectionError):
        selection.probed([1, 2])
    selection.assigned(True)
    with pytest.raises(SelectionError):
        selection.assigned(True)


def test_abort_ends_the_round_without_a_leader():
    selection = LeaderSelection([1, 2])
    selection.start()
    selection.probed([2])
    decision = selection.abort("broken")
    assert decision == NoLeader("broken")
    assert not selection.selecting and selection.current is None
    leader, _ = elect(selection, healthy=[1])
    assert leader.replica_id == 1


def test_before_its_first_leader_a_front_end_waits_for_a_higher_replica_still_catching_up():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    assert isinstance(selection.probed([1, 2], catching_up=[3]), ProbeAgain)
    decision = selection.probed([1, 2, 3])
    assert decision == Assign(3, (2, 1))


def test_the_wait_for_a_replica_catching_up_is_bounded():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    for _ in range(PATIENT_ROUNDS):
        assert isinstance(selection.probed([2], catching_up=[3]), ProbeAgain)
    assert selection.probed([2], catching_up=[3]) == Assign(2, (3, 1))


def test_a_lower_replica_catching_up_is_not_waited_for():
    selection = LeaderSelection([1, 2, 3])
    selection.start()
    assert selection.probed([3], catching_up=[1]) == Assign(3, (2, 1))


def test_once_it_has_had_a_leader_a_front_end_never_waits():
    """Failover must not wait for a restarted replica to finish catching up."""
    selection = LeaderSelection([1, 2, 3])
    elect(selection, [3])
    selection.failed(selection.current)
    selection.start()
    assert selection.probed([2], catching_up=[3]) == Assign(2, (3, 1))
