from bazaar.core.replication import Replication


def test_no_followers_means_replicated_as_far_as_durable_here() -> None:
    assert Replication().replicated_through(7) == 7


def test_new_followers_are_first_offered_the_leaders_last_order() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=5)
    assert r.to_send("a", last_accepted=5, limit=10) == (5, range(6, 6))
    assert r.replicated_through(5) == -1
    r.matched("a", 5)
    assert r.to_send("a", 5, 10) is None
    assert r.replicated_through(5) == -1  # b has not answered
    r.matched("b", 5)
    assert r.replicated_through(5) == 5


def test_a_gap_restarts_from_the_followers_last_order() -> None:
    r = Replication()
    r.assign(["a"], leader_last=9)
    r.gap("a", 3)
    assert r.to_send("a", 9, 4) == (3, range(4, 8))
    r.matched("a", 7)
    assert r.to_send("a", 9, 4) == (7, range(8, 10))


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


def test_batches_are_limited_and_start_no_later_than_the_leaders_log() -> None:
    r = Replication()
    r.add("a", leader_last=99)
    r.gap("a", -1)
    assert r.to_send("a", 99, 10) == (-1, range(0, 10))


def test_a_dropped_follower_no_longer_holds_back_acks_and_late_answers_change_nothing() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=9)
    r.matched("a", 9)
    r.drop("b")
    assert r.replicated_through(9) == 9
    assert r.to_send("b", 9, 10) is None
    for answer in (r.matched, r.gap):
        answer("b", 9)
    r.conflict("b")
    assert r.followers == ["a"]


def test_replicated_through_never_exceeds_the_local_disk() -> None:
    r = Replication()
    r.add("a", 10)
    r.matched("a", 10)
    assert r.replicated_through(4) == 4


def test_assign_replaces_the_follower_set() -> None:
    r = Replication()
    r.add("a", 3)
    r.assign(["b"], 3)
    assert r.followers == ["b"]
    assert r.match("a") is None and r.match("b") is None
