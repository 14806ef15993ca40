"""When a replica stands for leadership on its own, with no I/O.

The front end selects a leader when a request finds none; with no requests, nothing would. So a
replica that has led keeps the initiative: whenever it no longer leads, for whatever reason (it
lost its majority, a follower kept refusing it, a candidacy of its own failed, it promised a
candidate that then never led), it stands again on its own once it reaches a majority and hears
no live leader, at most once per `interval`, until it leads again or follows another leader.
Without this, a cluster idle after a partition or a freeze could stay with no leader, its
followers and its catalog behind, until the next request.

Only a replica that led holds the initiative, so the front end's choice (highest id first)
still decides who leads at the start; the first live leader heard ends every other replica's
initiative, so two of them stop standing against each other once one has won.
"""

from __future__ import annotations

INTERVAL = 1.0


class Initiative:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.held = False
        self._next = 0.0

    def led(self) -> None:
        """This replica won a candidacy: from now on it stands again whenever it stops leading."""
        self.held = True
        self._next = 0.0

    def postpone(self, now: float) -> None:
        """A candidacy began, ours or one we promised: give it `interval` to win before
        standing (against it) on our own."""
        self._next = max(self._next, now + self.interval)

    def due(self, now: float, *, leading: bool, standing: bool, following: bool, reaches_majority: bool) -> bool:
        """Whether to stand now. `following`: a live leader is heard, which ends the initiative."""
        if following:
            self.held = False
        return self.held and not (leading or standing or following) and reaches_majority and now >= self._next
