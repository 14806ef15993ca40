"""Deferreds waiting for a counter (a log position) to reach a value."""

from __future__ import annotations

import heapq
import itertools

from twisted.internet.defer import Deferred, succeed


class WaitList:
    def __init__(self, reached: int) -> None:
        self.reached = reached
        self._waiting: list[tuple[int, int, Deferred]] = []
        self._tiebreak = itertools.count()

    def wait(self, value: int) -> Deferred:
        """Fires with `value` once the counter reaches it."""
        if value <= self.reached:
            return succeed(value)
        d: Deferred = Deferred()
        heapq.heappush(self._waiting, (value, next(self._tiebreak), d))
        return d

    def advance(self, reached: int) -> None:
        self.reached = max(self.reached, reached)
        while self._waiting and self._waiting[0][0] <= self.reached:
            value, _, d = heapq.heappop(self._waiting)
            if not d.called:  # a waiter that gave up (timed out) has been called already
                d.callback(value)

    def fail_all(self, exc: Exception) -> None:
        waiting, self._waiting = self._waiting, []
        for _, _, d in waiting:
            if not d.called:
                d.errback(exc)
