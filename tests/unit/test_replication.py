from bazaar.core.replication import REATTACH_LAG, Replication


def test_no_followers_means_replicated_as_far_as_durable_here() -> None:
    assert Replication().replicated_through(7) == 7


def test_new_followers_are_offered_the_leaders_last_order_and_attach_once_matched() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=5)
    assert r.to_send("a", last_accepted=5, limit=10) == (5, range(6, 6))
    assert r.attached == [] and r.replicated_through(5) == 5  # nobody to wait for yet
    r.matched("a", 5, last_accepted=7)
    assert r.attached == ["a"]
    assert r.replicated_through(7) == 5  # now a holds acknowledgements back
    assert r.to_send("a", 7, 10) == (5, range(6, 8))
    r.matched("b", 7, last_accepted=7)
    r.matched("a", 7, last_accepted=7)
    assert r.replicated_through(7) == 7
    assert r.to_send("a", 7, 10) is None


def test_a_follower_far_behind_is_fed_but_not_waited_for_until_it_catches_up() -> None:
    r = Replication()
    r.assign(["a"], leader_last=1000)
    r.gap("a", 10)
    r.matched("a", 500, last_accepted=1000)
    assert r.attached == [] and r.replicated_through(1000) == 1000
    assert r.to_send("a", 1000, 1000) == (500, range(501, 1001))
    r.matched("a", 1000 - REATTACH_LAG, last_accepted=1000)
    assert r.attached == ["a"] and r.replicated_through(1000) == 1000 - REATTACH_LAG


def test_an_unreachable_follower_is_detached_but_still_fed() -> None:
    r = Replication()
    r.assign(["a", "b"], leader_last=3)
    r.matched("a", 3, 3)
    r.matched("b", 3, 3)
    r.unreachable("b")
    assert r.attached == ["a"] and r.followers == ["a", "b"]
    assert r.replicated_through(9) == 3  # only a holds it back
    r.matched("a", 9, 9)
    assert r.replicated_through(9) == 9
    assert r.to_send("b", 9, 10) == (3, range(4, 10))
    r.matched("b", 9, 9)
    assert r.attached == ["a", "b"]


def test_a_gap_restarts_from_the_followers_last_order() -> None:
    r = Replication()
    r.assign(["a"], leader_last=9)
    r.gap("a", 3)
    assert r.to_send("a", 9, 4) == (3, range(4, 8))
    r.matched("a", 7, 9)
    assert r.to_send("a", 9, 4) == (7, range(8, 10))


def test_conflicts_step_back_further_each_time_down_to_the_start() -> None:
    r = Replication()
    r.assign(["a"], leader_last=20)
    prevs = []
    for _ in range(7):
        prevs.append(r.to_send("a", 20, 100)[0])
        r.conflict("a")
    assert prevs == [20, 19, 17, 13, 5, -1, -1]
    r.matched("a", 20, 20)
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
    r.matched("a", 9, 9)
    r.matched("b", 2, 2)
    r.drop("b")
    assert r.replicated_through(9) == 9
    assert r.to_send("b", 9, 10) is None
    r.matched("b", 9, 9)
    r.gap("b", 9)
    r.conflict("b")
    r.unreachable("b")
    assert r.followers == ["a"]


def test_replicated_through_never_exceeds_the_local_disk() -> None:
    r = Replication()
    r.add("a", 10)
    r.matched("a", 10, 10)
    assert r.replicated_through(4) == 4


def test_assign_replaces_the_follower_set() -> None:
    r = Replication()
    r.add("a", 3)
    r.assign(["b"], 3)
    assert r.followers == ["b"]
    assert r.match("a") is None and r.match("b") is None
