from bazaar.core.replication import Replication


def test_no_followers_means_replicated_as_far_as_durable_here() -> None:
    r = Replication()
    assert r.replicated_through(7) == 7


def test_new_followers_are_asked_their_position_first_and_hold_back_acks() -> None:
    r = Replication()
    r.assign(["a", "b"])
    assert r.to_send("a", last_accepted=5, limit=10) == range(0)
    assert r.replicated_through(5) == -1
    r.acknowledged("a", 5)
    r.acknowledged("b", 3)
    assert r.replicated_through(5) == 3
    assert r.to_send("a", 5, 10) is None
    assert r.to_send("b", 5, 10) == range(4, 6)


def test_batches_are_limited() -> None:
    r = Replication()
    r.add("a", -1)
    assert r.to_send("a", 99, 10) == range(0, 10)


def test_a_dropped_follower_no_longer_holds_back_acks() -> None:
    r = Replication()
    r.assign(["a", "b"])
    r.acknowledged("a", 9)
    assert r.replicated_through(9) == -1
    r.drop("b")
    assert r.replicated_through(9) == 9
    assert r.to_send("b", 9, 10) is None
    r.acknowledged("b", 9)  # a late answer from a dropped follower changes nothing
    assert r.followers == ["a"]


def test_replicated_through_never_exceeds_the_local_disk() -> None:
    r = Replication()
    r.add("a", 10)
    assert r.replicated_through(4) == 4


def test_assign_replaces_the_follower_set() -> None:
    r = Replication()
    r.add("a", 3)
    r.assign(["b"])
    assert r.followers == ["b"]
    assert r.position("a") is None and r.position("b") is None
