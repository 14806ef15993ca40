"""The leader's sender to one peer: one call in flight, carrying whatever the peer lacks, so a
peer that falls behind catches up in large batches.

What to send and what an answer means is the feed's business (a follower's log entries, the
catalog's committed trades); the link only keeps one call in flight, waits when the feed says
Later, and retries with backoff after a failure, so a peer that was frozen or restarted is
caught up as soon as it answers.
Calls go out in order and one at a time, which is what lets a follower trust that nothing
beyond the leader's last entry (as the batch states it) belongs to this leader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from bazaar.rpc.peers import is_peer_failure

log = Logger()

# After a failed call: 50 ms, doubling to at most 0.5 s between attempts, so a peer that
# thaws or heals is caught up (and renews the leader's lease) well within a second.
RETRY_FIRST, RETRY_MAX = 0.05, 0.5
# A peer that stays unreachable is logged again this often, with its latest error: one line
# at the first failure alone would leave an operator guessing whether it ever came back.
STILL_UNREACHABLE_EVERY = 30.0


@dataclass(frozen=True)
class Later:
    """A feed's answer to "what next?": something to send, but not before `seconds` from now."""

    seconds: float


class Feed(Protocol):
    """What a link sends, and what it makes of the answers."""

    def next_request(self) -> Any | None:
        """The next request for the peer, None when it has everything for now, or Later."""

    def answered(self, response: Any) -> float | None:
        """The peer answered; None to send the next request at once, or a delay in seconds."""

    def unreachable(self) -> None:
        """A call failed: the peer is down, frozen or cut off."""


class Link:
    def __init__(
        self, reactor: Any, name: str, feed: Feed, send: Callable[[Any, bool], Deferred],
    ) -> None:
        """`send(request, wait_for_ready)` makes the call, with its own deadline."""
        self._reactor = reactor
        self.name = name
        self._feed = feed
        self._send = send
        self._sending = False
        self._retry: Any = None
        # Until the peer answers, its channel may still be reconnecting after a restart: such
        # a call waits for it (within its deadline) instead of failing at once.
        self._reachable = False
        self._failures = 0
        self._logged_at = 0.0  # when a failure was last logged
        self.closed = False

    def kick(self) -> None:
        """Send what the peer lacks, unless a send or a retry is already under way."""
        if self._sending or self.closed or self._retry is not None:
            return
        request = self._feed.next_request()
        if request is None:
            return
        if isinstance(request, Later):
            self._retry_in(request.seconds)  # kicks meanwhile wait for it, as for a retry
            return
        self._sending = True
        maybeDeferred(self._send, request, not self._reachable).addCallbacks(self._answered, self._failed)

    def close(self) -> None:
        self.closed = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _answered(self, response: Any) -> None:
        self._sending = False
        self._reachable, self._failures = True, 0
        if self.closed:
            return
        delay = self._feed.answered(response)
        if delay is None:
            self.kick()
        else:
            self._retry_in(delay)

    def _failed(self, failure: Any) -> None:
        self._sending = False
        self._reachable = False
        if self.closed:
            return
        if is_peer_failure(failure.value):
            now = self._reactor.seconds()
            if self._failures == 0:
                self._logged_at = now
                log.warn("{name} unreachable ({error}); retrying with backoff",
                         name=self.name, error=_short(failure.value))
            elif now - self._logged_at >= STILL_UNREACHABLE_EVERY:
                self._logged_at = now
                log.warn("{name} still unreachable after {attempts} attempts ({error}); retrying",
                         name=self.name, attempts=self._failures + 1, error=_short(failure.value))
        else:
            log.failure("sending to {name} failed", failure, name=self.name)
        self._feed.unreachable()
        self._retry_in(min(RETRY_MAX, RETRY_FIRST * 2 ** self._failures))
        self._failures += 1

    def _retry_in(self, delay: float) -> None:
        self._retry = self._reactor.callLater(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.kick()


def _short(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return code().name if callable(code) else type(exc).__name__
