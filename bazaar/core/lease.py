"""Heartbeats and leases, with no I/O: how long a leader may trust that it still leads, how long
a follower keeps faith with the leader it last heard from, and which peers a replica reaches.

A follower that accepts a batch from a leader at time t promises no new epoch, to anyone and to
itself, before t + LEASE (`FollowerLease`): a candidate that asks sooner is refused, told that a
leader is alive. The leader counts a follower's answer from the time it *sent* that batch (s, and
s <= t), and trusts its lease only until s + LEASE - MARGIN (`LeaderLease`): while it holds its
lease, no majority can have promised another epoch, so no other leader can have been chosen, and
it may answer from its own log alone (a lookup, a definite "not executed"). A leader that has not
heard from a majority within its lease no longer knows that it leads: it steps down.

The leader sends every follower a batch at least every HEARTBEAT_INTERVAL, empty when there is
nothing to send (a heartbeat, carrying its commit point), so a lease is renewed some times over
before it lapses. A follower that hears no leader within LEASE says so when it is described.

Every replica also calls each peer now and then (`Reachability`): the front end picks a new
leader only among replicas that reach a majority, so a replica cut from the others is not
picked again and again.
"""

from __future__ import annotations

import math
from typing import Iterable

from bazaar.core.quorum import followers_needed, majority

HEARTBEAT_INTERVAL = 0.1
# Faith kept with a leader whose id is not known (after a restart, or during a rejoin): no
# candidate is that leader.
UNKNOWN_LEADER = -1
LEASE = 0.5
# The leader's lease ends this much earlier than its followers' promise: its timers may fire
# late under load, and two clocks never run at quite the same rate.
MARGIN = 0.05


class LeaderLease:
    def __init__(self, followers: Iterable[str], started: float, duration: float = LEASE - MARGIN) -> None:
        self._followers = set(followers)
        self.needed = followers_needed(len(self._followers))
        self._acked: dict[str, float] = {}
        self._started = started
        self.duration = duration

    def add(self, follower: str) -> None:
        self._followers.add(follower)
        self.needed = followers_needed(len(self._followers))

    def acked(self, follower: str, sent_at: float) -> None:
        """`follower` accepted a batch this leader sent at `sent_at`."""
        if follower in self._followers:
            self._acked[follower] = max(self._acked.get(follower, -math.inf), sent_at)

    def expiry(self) -> float:
        """Until when a majority is known to refuse every other candidate."""
        if self.needed == 0:
            return math.inf
        times = sorted(self._acked.values(), reverse=True)
        if len(times) < self.needed:
            return -math.inf
        return times[self.needed - 1] + self.duration

    def holds(self, now: float) -> bool:
        return now < self.expiry()

    def lapsed(self, now: float) -> bool:
        """No majority answered within the lease, counting from the start of the leadership
        too (a leader is given one lease to establish itself)."""
        return now >= max(self.expiry(), self._started + self.duration)

    def silent(self, now: float) -> list[str]:
        """Followers not heard from within the lease, for the record of why it lapsed."""
        return sorted(f for f in self._followers if now >= self._acked.get(f, -math.inf) + self.duration)


class FollowerLease:
    """The leader this replica last accepted a batch from, and until when it keeps faith."""

    def __init__(self, duration: float = LEASE) -> None:
        self.duration = duration
        self.leader = ""
        self.epoch = 0
        self._until = -math.inf

    def heard(self, leader: str, epoch: int, now: float) -> None:
        self.leader, self.epoch = leader, epoch
        self._until = now + self.duration

    def alive(self, now: float) -> bool:
        """Whether a leader was heard within the lease: no new epoch may be promised."""
        return now < self._until

    def end(self) -> None:
        """This replica is the leader now: it keeps no faith with an earlier one."""
        self._until = -math.inf


class Reachability:
    """The peers that answered a call sent within the last `window` seconds."""

    def __init__(self, peers: Iterable[str], window: float = LEASE) -> None:
        self.peers = tuple(sorted(set(peers)))
        self.window = window
        self._answered: dict[str, float] = {}
        self._since: dict[str, float] = {}  # a forgotten peer counts again from calls sent since

    def answered(self, peer: str, sent_at: float) -> None:
        if peer in self.peers and sent_at >= self._since.get(peer, -math.inf):
            self._answered[peer] = max(self._answered.get(peer, -math.inf), sent_at)

    def forget(self, peers: Iterable[str], now: float) -> None:
        """`peers` fell silent for a whole lease (a leader steps down without them): they
        are unreachable until they answer a call sent from `now` on. The window is longer than
        the leader's lease, so otherwise they would still count for a moment, and the leader
        that just stepped down would stand again at once against the candidate its followers
        are electing, holding its front ends' requests while its candidacy fails."""
        for peer in peers:
            if peer in self.peers:
                self._answered.pop(peer, None)
                self._since[peer] = now

    def answered_at(self, peer: str) -> float:
        """When the latest call `peer` answered was sent (-inf: none)."""
        return self._answered.get(peer, -math.inf)

    def reachable(self, now: float) -> list[str]:
        return [p for p in self.peers if now < self._answered.get(p, -math.inf) + self.window]

    def reaches_majority(self, now: float) -> bool:
        """Whether the peers reached, with this replica, are a majority of all the replicas."""
        return len(self.reachable(now)) + 1 >= majority(len(self.peers) + 1)
