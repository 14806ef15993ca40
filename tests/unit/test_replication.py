from bazaar.core.replication import Replication


def test_a_lone_replica_is_its_own_majority() -> None:
    r = Replication()
    assert r.needed == 0 and r.quorum_reachable
    assert r.committed_through(7, first_own=3) == 7
    assert r.committed_through(2, first_own=3) is None, "its own leader entry is not on disk yet"


def test_with_two_followers_one_is_a_majority_with_the_leader() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=5)
    assert r.needed == 1
    assert r.committed_through(7, first_own=0) is None  # nobody has answered
    r.matched("a", 6)
    assert r.committed_through(7, first_own=0) == 6  # a lagging or silent b costs nothing
    r.matched("b", 7)
    assert r.committed_through(7, first_own=0) == 7
    # The leader's own fsync came last: both followers are a majority without it.
    assert r.committed_through(4, first_own=0) == 6


def test_the_leader_counts_once_its_copy_is_on_its_disk() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=5)
    r.matched("a", 8)
    assert r.committed_through(5, first_own=0) == 5  # the leader and a: 5; b holds nothing
    assert r.committed_through(8, first_own=0) == 8
    r.matched("b", 3)
    assert r.committed_through(2, first_own=0) == 3  # a and b: 3, the leader's disk is behind both


def test_with_four_followers_two_are_needed() -> None:
    r = Replication()
    r.assign(["a", "b", "c", "d"], leader_last=9)
    r.matched("a", 9)
    assert r.committed_through(9, first_own=0) is None
    r.matched("c", 5)
    assert r.needed == 2 and r.committed_through(9, first_own=0) == 5


def test_nothing_is_committed_before_an_entry_of_the_leaders_epoch_is_on_a_majority() -> None:
    """A new leader whose leader entry is 6 inherited entries 0..5 from older epochs."""
    r = Replication()
    r.assign(["a", "b"], leader_last=6)
    r.matched("a", 5)  # every inherited entry is on a majority ...
    assert r.committed_through(6, first_own=6) is None  # ... but none is committed by that
    r.matched("a", 6)
    assert r.committed_through(6, first_own=6) == 6, "the leader entry commits all before it"
    assert r.committed_through(5, first_own=6) is None, "on one follower alone: not a majority"
    r.matched("b", 6)
    assert r.committed_through(5, first_own=6) == 6, "on both followers: a majority without the leader"
    assert r.committed_through(6, first_own=-1) is None, "a replica that does not lead commits nothing"


def test_an_older_epochs_entry_on_a_majority_is_not_committed_by_counting_alone() -> None:
    """Raft's figure 8, five replicas. S1 led epoch 2 and put entry 2 on S1 and S2; S5 led epoch
    3 with an entry 2 of its own on S5 alone. S1, leading again in epoch 4 (leader entry 3),
    gets its entry 2 onto S3: a majority (S1, S2, S3) holds it, yet S5 could still be elected
    (by S2, S3, S4: its last epoch 3 beats their 2) and replace it. Only once S1's epoch-4
    entry is on a majority is entry 2 committed, and S5 can no longer win."""
    r = Replication()
    r.assign(["S2", "S3", "S4", "S5"], leader_last=3)
    r.matched("S2", 2)
    r.matched("S3", 2)
    assert r.needed == 2
    assert r.committed_through(3, first_own=3) is None
    r.matched("S2", 3)
    assert r.committed_through(3, first_own=3) is None, "one follower holds the leader entry: no majority"
    r.matched("S3", 3)
    assert r.committed_through(3, first_own=3) == 3


def test_reachability_follows_the_last_call() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=3)
    assert r.reachable == [] and not r.quorum_reachable
    r.gap("a", 1)
    assert r.reachable == ["a"] and r.quorum_reachable
    r.unreachable("a")
    r.conflict("b")
    assert r.reachable == ["b"]
    r.unreachable("b")
    assert not r.quorum_reachable


def test_new_followers_are_offered_the_leaders_last_entry() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=5)
    assert r.to_send("a", last_index=5, limit=10) == (5, range(6, 6))
    r.matched("a", 5)
    assert r.to_send("a", 5, 10) is None
    assert r.to_send("a", 7, 10) == (5, range(6, 8))


def test_a_gap_restarts_from_the_followers_last_entry_and_lowers_its_match() -> None:
    r = Replication()
    r.assign(["a"], leader_last=9)
    r.matched("a", 9)
    r.gap("a", 3)  # it lost entries (a late duplicate batch cut it back)
    assert r.match("a") == 3
    assert r.to_send("a", 9, 4) == (3, range(4, 8))


def test_conflicts_step_back_further_each_time_down_to_the_start() -> None:
    r = Replication()
    r.assign(["a"], leader_last=20)
    prevs = []
    for _ in range(7):
        prevs.append(r.to_send("a", 20, 100)[0])
        r.conflict("a")
    assert prevs == [20, 19, 17, 13, 5, -1, -1]
    r.matched("a", 20)
    r.conflict("a")
    assert r.to_send("a", 25, 100)[0] == 19  # the step starts small again after a match


def test_batches_are_limited() -> None:
    r = Replication()
    r.add("a", leader_last=99)
    r.gap("a", -1)
    assert r.to_send("a", 99, 10) == (-1, range(0, 10))


def test_a_dropped_follower_is_forgotten_and_late_answers_change_nothing() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=9)
    r.drop("b")
    assert r.to_send("b", 9, 10) is None
    r.matched("b", 9)
    r.gap("b", 9)
    r.conflict("b")
    r.unreachable("b")
    assert r.followers == ["a"] and r.committed_through(9, first_own=0) is None


def test_assign_replaces_the_follower_set() -> None:
    r = Replication()
    r.add("a", 3)
    r.assign(["b"], 3)
    assert r.followers == ["b"]
    assert r.match("a") is None and r.match("b") is None


def test_a_follower_reading_our_log_on_a_stream_gets_heartbeats_only_while_the_others_make_a_majority():
    r = Replication()
    r.assign(["b", "c"], leader_last=10)
    r.stream("b", until=5.0)
    assert not r.streaming("b", now=1.0), "c has not answered: b's entries may be what commits"
    r.matched("c", 10)
    assert r.streaming("b", now=1.0)
    r.unreachable("c")
    assert not r.streaming("b", now=1.0), "with c gone, b is fed as usual so that trades commit"
    r.heard("c")
    assert r.streaming("b", now=1.0) and not r.streaming("b", now=5.0), "no word of the stream for its hold"
    r.add("b", leader_last=10)  # its stream ended and it was added afresh
    assert not r.streaming("b", now=1.0)


def test_heard_marks_a_follower_reachable_and_moves_nothing():
    r = Replication()
    r.assign(["b", "c"], leader_last=10)
    r.heard("b")
    assert r.reachable == ["b"] and r.to_send("b", 10, 100) == (10, range(11, 11)) and r.match("b") is None


def test_of_two_matched_followers_the_second_in_address_order_is_spare() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=5)
    assert not r.spare("a", set()) and not r.spare("b", set()), "neither has answered yet"
    r.matched("a", 5)
    r.matched("b", 5)
    assert not r.spare("a", set()), "a is the one the leader counts on"
    assert r.spare("b", set())
    r.matched("b", 7)
    assert not r.spare("b", set()), "a is behind b: b's answer may be what commits"
    r.matched("a", 7)
    assert r.spare("b", set())
    assert not r.spare("b", {"a"}), "a has a call out for long: not counted on"
    r.unreachable("a")
    assert not r.spare("b", set())
    assert not r.spare("c", set()), "not a follower"


def test_with_four_followers_the_last_two_are_spare() -> None:
    r = Replication()
    r.assign(["a", "b", "c", "d"], leader_last=0)
    for follower in "abcd":
        r.matched(follower, 3)
    assert [f for f in "abcd" if r.spare(f, set())] == ["c", "d"]
    assert [f for f in "abcd" if r.spare(f, {"b"})] == ["d"]
