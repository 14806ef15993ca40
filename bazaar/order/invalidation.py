"""The leader's push to every front end after a trade: GET /cache/<name> (docs/api.md).

One push is in flight at a time, pushes start at least PUSH_SPACING apart, and names traded
meanwhile wait in a set: under load a stock traded a hundred times while a push was under way
costs one more push, not a hundred (each is a whole HTTP request, for the leader and for the
front end, which also serves the clients). A name traded while its own push is in flight is
pushed again afterwards, since that push may have reached the front end before the new trade.
The delay costs little: the front end drops the entry itself when it sees the trade succeed;
the push is for trades whose answer it never saw.
"""

from __future__ import annotations

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

PUSH_SPACING = 0.01  # seconds between the starts of two pushes


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
        get: Callable[..., Deferred] | None = None,
    ) -> None:
        """`credentials`: this replica's, shown to the front ends' internal listeners (None:
        TLS is off, plaintext on loopback)."""
        self._lanes = [_Lane(reactor, config, credentials, i, get) for i in config.frontends]
        self._enabled = config.frontend.cache

    @property
    def pushes(self) -> int:
        return sum(lane.pushes for lane in self._lanes)

    @property
    def lanes(self) -> list["_Lane"]:
        """One per front end (its `frontend_id`, `pushes`, `failures` and `waiting`)."""
        return list(self._lanes)

    def __call__(self, name: str) -> None:
        """Fire and forget: a front end also drops the entry itself when a trade it placed succeeds."""
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
        get: Callable[..., Deferred] | None,
    ) -> None:
        self.frontend_id = frontend_id
        self._base = internal_url(config, credentials, frontend_id) + "/cache/"
        self._timeout = config.timeouts.http
        self._pool = QuietPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 1
        peer = frontend_name(frontend_id)
        self._agent = None if credentials is None else cluster_agent(reactor, credentials, peer, self._pool)
        self._get = get or treq.get
        self._reactor = reactor
        self._waiting: dict[str, None] = {}  # an ordered set: oldest first
        self._pushing = False
        self._last_push = float("-inf")
        self._next: Any = None
        self.pushes = 0
        self.failures = 0  # pushes that got no answer (the front end down or too slow)

    def __call__(self, name: str) -> None:
        self._waiting[name] = None
        self._push_next()

    def _push_next(self) -> None:
        if self._pushing or not self._waiting or self._next is not None:
            return
        wait = self._last_push + PUSH_SPACING - self._reactor.seconds()
        if wait > 0:
            self._next = self._reactor.callLater(wait, self._push_now)
            return
        self._last_push = self._reactor.seconds()
        name = next(iter(self._waiting))
        del self._waiting[name]
        self._pushing = True
        self.pushes += 1
        # maybeDeferred: a get that raises must not leave _pushing set, which would stop all pushes.
        how = {"pool": self._pool} if self._agent is None else {"agent": self._agent}
        d = maybeDeferred(self._get, self._base + quote(name, safe=""), timeout=self._timeout, **how)
        d.addCallback(treq.content)
        d.addErrback(self._failed)
        d.addErrback(lambda f: log.debug("cache invalidation of {name} at front end {frontend} failed: {error}",
                                         name=name, frontend=self.frontend_id, error=f.getErrorMessage()))
        d.addBoth(self._pushed)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _failed(self, failure: Any) -> Any:
        self.failures += 1
        return failure

    def _push_now(self) -> None:
        self._next = None
        self._push_next()

    def _pushed(self, _: Any) -> None:
        self._pushing = False
        self._push_next()

    def close(self) -> Any:
        self._waiting.clear()
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        return self._pool.closeCachedConnections()
