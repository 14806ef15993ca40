"""The leader's push to every front end after a trade: POST /cache/invalidations with the
names of the stocks traded (docs/api.md), and, once per leadership, DELETE /cache.

One push is in flight at a time per front end, pushes start at least PUSH_SPACING apart, and
names traded meanwhile wait in a set; the next push carries all of them (up to PUSH_NAMES):
under load, stocks traded a hundred times while a push was under way cost one more push, not a
hundred (each is a whole HTTPS request, for the leader and for the front end, which also
serves the clients). A name traded while its own push is in flight is pushed again afterwards,
since that push may have reached the front end before the new trade. The delay costs little:
the front end drops the entry itself when it sees the trade succeed; the push is for trades
whose answer it never saw.

A push that gets no answer, or any answer but 200, is sent again (after RETRY_FIRST seconds,
doubling up to RETRY_MOST while they keep failing): a front end that was frozen, restarting or
at its connection cap still learns every trade once it answers. What waits is a set of stock
names, so it is bounded by the stock table. A new leader cannot know which of its predecessor's
pushes were lost, so its first push to each front end drops everything (EVERYTHING).
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Callable
from urllib.parse import quote

import treq
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.logger import Logger
from twisted.web.client import HTTPConnectionPool

from bazaar.config import Config
from bazaar.tls.files import Credentials
from bazaar.tls.identity import frontend_name
from bazaar.tls.web import cluster_agent, internal_url

log = Logger()

PUSH_SPACING = 0.05  # seconds between the starts of two pushes
# Names in one push at most, and its body's bytes at most (UTF-8 JSON): well inside the 64 KiB
# a front end reads of a body, whatever the names (up to 100 characters of up to 4 bytes each).
PUSH_NAMES = 100
PUSH_BYTES = 32 * 1024
RETRY_FIRST = 0.05  # seconds before a failed push is sent again; doubled while they fail
RETRY_MOST = 1.0
# What invalidate(EVERYTHING) drops: every entry of every front end's cache.
EVERYTHING = None


def _batch(waiting: dict[str, None]) -> tuple[list[str], bytes]:
    """The oldest names waiting that fit one push (at least one), and the push's body."""
    names: list[str] = []
    encoded: list[bytes] = []  # each name as a JSON string: the body is made of these
    size = len(b'{"names":[]}')
    for name in itertools.islice(waiting, PUSH_NAMES):
        one = json.dumps(name, ensure_ascii=False).encode("utf-8")
        if names and size + len(one) + 1 > PUSH_BYTES:
            break
        names.append(name)
        encoded.append(one)
        size += len(one) + 1
    return names, b'{"names":[' + b",".join(encoded) + b"]}"


class PushRefused(Exception):
    """The front end answered, but not 200."""


class QuietPool(HTTPConnectionPool):
    """Its connections log nothing as they open and close: Twisted's client factories say
    "Starting factory" and "Stopping factory" for each, two lines per connection."""

    class _factory(HTTPConnectionPool._factory):  # type: ignore[name-defined]
        noisy = False


class CacheInvalidator:
    """Pushes to every configured front end, each in its own lane: a front end that is down
    or slow delays only its own pushes."""

    def __init__(
        self, reactor: Any, config: Config, credentials: Credentials | None,
        request: Callable[..., Deferred] | None = None,
    ) -> None:
        """`credentials`: this replica's, shown to the front ends' internal listeners (None:
        TLS is off, plaintext on loopback). `request`: treq.request's signature (for tests)."""
        self._lanes = [_Lane(reactor, config, credentials, i, request) for i in config.frontends]
        self._enabled = config.frontend.cache

    @property
    def pushes(self) -> int:
        return sum(lane.pushes for lane in self._lanes)

    @property
    def lanes(self) -> list["_Lane"]:
        """One per front end (its `frontend_id`, `pushes`, `failures` and `waiting`)."""
        return list(self._lanes)

    def __call__(self, name: str | None) -> None:
        """Fire and forget: a front end also drops the entry itself when a trade it placed
        succeeds. `name` EVERYTHING: drop every entry."""
        if not self._enabled:
            return
        for lane in self._lanes:
            lane(name)

    def close(self) -> Any:
        return gatherResults([lane.close() for lane in self._lanes])


class _Lane:
    """The pushes to one front end."""

    def __init__(
        self, reactor: Any, config: Config, credentials: Credentials | None, frontend_id: int,
        request: Callable[..., Deferred] | None,
    ) -> None:
        self.frontend_id = frontend_id
        self._base = internal_url(config, credentials, frontend_id) + "/cache"
        self._timeout = config.timeouts.http
        self._pool = QuietPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 1
        peer = frontend_name(frontend_id)
        self._agent = None if credentials is None else cluster_agent(reactor, credentials, peer, self._pool)
        self._request = request or treq.request
        self._reactor = reactor
        self._waiting: dict[str, None] = {}  # an ordered set: oldest first
        self._everything = False  # EVERYTHING waits, before any name
        self._pushing = False
        self._last_push = float("-inf")
        self._retry_at = float("-inf")
        self._backoff = 0.0  # seconds: 0 while pushes succeed
        self._next: Any = None
        self._in_flight: Deferred | None = None
        self._closed = False
        self._one_by_one = False  # the front end takes GET /cache/<name> only (an earlier release)
        self.pushes = 0
        self.failures = 0  # pushes that got no answer (the front end down or too slow) or not 200

    def __call__(self, name: str | None) -> None:
        if self._closed:
            return
        if name is EVERYTHING:
            self._waiting.clear()  # dropping everything drops these too
            self._everything = True
        elif not self._everything:
            self._waiting[name] = None
        self._push_next()

    def _push_next(self) -> None:
        if self._closed or self._pushing or not (self._waiting or self._everything) or self._next is not None:
            return
        wait = max(self._last_push + PUSH_SPACING, self._retry_at) - self._reactor.seconds()
        if wait > 0:
            self._next = self._reactor.callLater(wait, self._push_now)
            return
        self._last_push = self._reactor.seconds()
        names: list[str] | None
        how: dict[str, Any] = {"pool": self._pool} if self._agent is None else {"agent": self._agent}
        if self._everything:
            names, self._everything = EVERYTHING, False
            method, url = "DELETE", self._base
        elif self._one_by_one:
            names = [next(iter(self._waiting))]
            del self._waiting[names[0]]
            method, url = "GET", f"{self._base}/{quote(names[0], safe='')}"
        else:
            names, body = _batch(self._waiting)
            for name in names:
                del self._waiting[name]
            method, url = "POST", f"{self._base}/invalidations"
            how["data"] = body
            how["headers"] = {b"Content-Type": [b"application/json"]}
        self._pushing = True
        self.pushes += 1
        # maybeDeferred: a request that raises must not leave _pushing set, which would stop all pushes.
        d = maybeDeferred(self._request, method, url, timeout=self._timeout, **how)
        self._in_flight = d
        d.addCallback(self._answered)
        d.addCallbacks(self._succeeded, self._failed, errbackArgs=(names,))
        d.addBoth(self._pushed)

    @property
    def waiting(self) -> int:
        return len(self._waiting) + self._everything

    def _answered(self, response: Any) -> Deferred:
        """The body read (which frees the connection), then a failure unless it was a 200."""
        def check(_: bytes) -> None:
            if response.code in (404, 405) and not self._one_by_one:
                # A front end of an earlier release, without POST /cache/invalidations: from
                # now on, one name a push, as it takes them.
                log.info("front end {frontend} takes no batched invalidations: pushing one name at a time",
                         frontend=self.frontend_id)
                self._one_by_one = True
            if response.code != 200:
                raise PushRefused(f"answered {response.code}")

        return treq.content(response).addCallback(check)

    def _succeeded(self, _: Any) -> None:
        self._backoff = 0.0

    def _failed(self, failure: Any, names: list[str] | None) -> None:
        """Send it again later: until the front end has it, its cache may hold the old values."""
        self.failures += 1
        if self._closed:
            return  # the process is stopping: a push cut short stays undone
        self._backoff = min(RETRY_MOST, max(RETRY_FIRST, 2 * self._backoff))
        self._retry_at = self._reactor.seconds() + self._backoff
        if names is EVERYTHING:
            self(EVERYTHING)
        elif not self._everything:  # first, as they were: the oldest waiting
            self._waiting = {**dict.fromkeys(names), **self._waiting}
        log.debug("cache invalidation of {names} at front end {frontend} failed ({error}); again in {delay} s",
                  names=", ".join(names) if names is not EVERYTHING else "everything", frontend=self.frontend_id,
                  error=failure.getErrorMessage(), delay=self._backoff)

    def _push_now(self) -> None:
        self._next = None
        self._push_next()

    def _pushed(self, _: Any) -> None:
        self._pushing = False
        self._in_flight = None
        self._push_next()

    def close(self) -> Any:
        self._closed = True
        self._waiting.clear()
        self._everything = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        if self._in_flight is not None:
            self._in_flight.cancel()  # its timeout timer and connection go with it
        return self._pool.closeCachedConnections()
