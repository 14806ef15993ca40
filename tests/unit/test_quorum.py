"""One definition of a majority, and of the followers that make one with a leader."""

from bazaar.core.lease import Reachability
from bazaar.core.quorum import followers_needed, majority


def test_a_majority_is_more_than_half():
    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_the_followers_needed_make_a_majority_with_the_leader():
    assert [followers_needed(f) for f in (0, 1, 2, 3, 4)] == [0, 1, 1, 2, 2]


def test_a_replica_reaches_a_majority_with_itself():
    reach = Reachability(["a", "b"], window=1.0)
    assert not reach.reaches_majority(0.0)
    reach.answered("b", sent_at=0.0)
    assert reach.reaches_majority(0.5) and not reach.reaches_majority(1.0)
