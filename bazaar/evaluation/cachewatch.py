"""Follows the front end's cache through GET /cache[?since=<seq>] during the runs: on its
internal listener, the whole report with its events; on the public port, its counters only.

The front end keeps only its latest 10,000 events, so a run's events are polled every
POLL_EVERY seconds (a run at a few hundred requests a second makes far fewer events than that
in between) and once at the end. A gap in the sequence numbers is counted, never hidden.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from bazaar.tools.cluster import ClusterError
from bazaar.evaluation.exchange import exchange
from bazaar.evaluation.results import fresh_events

POLL_EVERY = 0.5


class CacheUnavailable(ClusterError):
    """GET /cache gave no usable answer (a ClusterError: `bazaar` prints its message as it is)."""


class CacheWatch:
    def __init__(self, http: Any, reactor: Any, url: str) -> None:
        self._http = http
        self._reactor = reactor
        self._url = url.rstrip("/") + "/cache"
        self.cursor = -1  # the last seq seen; survives from run to run
        self.events: list[dict[str, Any]] = []  # {"seq", "time", "kind", "name"} since begin()
        self.lost = 0
        self._loop: Any = None
        self._polling: Deferred | None = None

    async def read(self) -> dict[str, Any]:
        """The cache's report now; its new events join `events`."""
        answer = await exchange(self._http, self._reactor, "GET", f"{self._url}?since={self.cursor}")
        data = answer.body.get("data") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not isinstance(data, dict) or "enabled" not in data:
            raise CacheUnavailable(f"GET {self._url}: {answer.describe()}")
        if data["enabled"] and "events" in data:
            new, self.cursor, lost = fresh_events(data["events"], self.cursor)
            self.events.extend(new)
            self.lost += lost
        return data

    async def begin(self) -> dict[str, Any]:
        """The report at a run's start; from here on, events are collected and polled for."""
        from twisted.internet.task import LoopingCall

        before = await self.read()
        self.events, self.lost = [], 0
        self._loop = LoopingCall(self._poll)
        self._loop.clock = self._reactor
        self._loop.start(POLL_EVERY, now=False)
        return before

    async def end(self) -> dict[str, Any]:
        """Stop polling; the report at the run's end, after a last poll."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._polling is not None:
            await self._polling
        return await self.read()

    def _poll(self) -> None:
        if self._polling is not None:
            return  # the previous poll is still on its way

        def done(result: object) -> None:
            self._polling = None

        self._polling = Deferred.fromCoroutine(self.read())
        # A failed poll loses nothing: the events wait in the log for the next one.
        self._polling.addErrback(lambda failure: None)
        self._polling.addBoth(done)
