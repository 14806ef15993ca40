"""Fake replicas describe themselves from their probe answer: the selection then works as a
health check would have it (a healthy replica is a ready follower reaching every other)."""

from bazaar.core.leader_selection import ReplicaView
from bazaar.frontend.backends import CATCHING_UP


def view_of(replica_id: int, healthy: object) -> ReplicaView | None:
    if healthy is CATCHING_UP:
        return ReplicaView(replica_id, ready=False, reachable=frozenset(range(1, 10)) - {replica_id})
    if not healthy:
        return None
    return ReplicaView(replica_id, reachable=frozenset(range(1, 10)) - {replica_id})

