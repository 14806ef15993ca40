"""What a majority is, counted once for every rule that needs one: the commit rule, a
candidacy's promises, the leader's lease, and who may lead."""


def majority(replicas: int) -> int:
    """The fewest replicas that are more than half of `replicas`."""
    return replicas // 2 + 1


def followers_needed(followers: int) -> int:
    """Followers that, with the leader (or candidate), make a majority of all the replicas."""
    return majority(followers + 1) - 1
