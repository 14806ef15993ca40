"""The public port's site: the API behind ApiChannel, and a cap on open connections.

Beyond `max_connections` in all, or `max_connections_per_peer` from one address, a new
connection is answered 503 (JSON, `Connection: close`) without being parsed, and the clients
already connected go on being served. The cap keeps the process below its file descriptor
limit, where the listening port would stop accepting anyone. The front end's internal
listener and every process's metrics listener are ApiSites too, with their own small limits.
"""

from __future__ import annotations

from collections import Counter
from time import perf_counter
from typing import Any, Callable

from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.server import Site

from bazaar.config import FrontendConfig
from bazaar.frontend.channel import ApiChannel, ApiRequest
from bazaar.frontend.wire import error_response_bytes

log = Logger()

# A refused client gets this long to send its request head, so that the connection is closed
# with nothing unread: closing over unread bytes resets it, and the client may lose the 503.
LINGER = 1.0
# Refused connections lingering at once (unless a site is given fewer); past these, a refusal
# is written and closed at once.
MAX_LINGERING = 200
_RETRY_AFTER = ((b"Retry-After", b"1"),)


class ApiSite(Site):
    """JSON bodies only, an access log only when asked for one, and the connection caps."""

    protocol = ApiChannel
    # Told of every request once its answer is written (`finished`) or its connection lost
    # first, with its seconds since it arrived whole (bazaar/metrics/frontend.py sets it;
    # None: requests are not timed).
    observe: Callable[[Any, float, bool], None] | None = None

    # Who is refusing, in the 503's message.
    serving = "the front end"

    def __init__(self, resource: Any, limits: FrontendConfig, access_log: str | None = None,
                 reactor: Any = None, max_lingering: int = MAX_LINGERING) -> None:
        """`limits`: its connection caps and timeouts (FrontendConfig's read_timeout,
        idle_timeout, max_connections and max_connections_per_peer)."""
        # Bodies are JSON: parsing each POST's Content-Type for form fields (with the email
        # package) would cost more CPU than the rest of the request's HTTP handling.
        super().__init__(resource, requestFactory=ApiRequest, logPath=access_log, parsePOSTFormSubmission=False,
                         timeout=limits.idle_timeout, reactor=reactor)
        self.displayTracebacks = False
        self.limits = limits
        self.max_lingering = max_lingering
        self.open = 0
        self.open_by_peer: Counter[str] = Counter()
        self.lingering = 0
        self.refused = 0  # since the cap was last reached
        self.accepted = 0  # connections, ever
        # Answers written without serving a request, by status: 503 at the caps, and the
        # channel's refusals (408, 413, 414, 431, 400).
        self.refusals: Counter[int] = Counter()

    @property
    def descriptors(self) -> int:
        """The most descriptors its connections hold at once: those served, and the refused
        ones lingering."""
        return self.limits.max_connections + self.max_lingering

    def log(self, request: Any) -> None:
        # Called by Request.finish, once the whole answer is written.
        observe = self.observe
        started = getattr(request, "started", None)
        if observe is not None and started is not None:
            observe(request, perf_counter() - started, True)
        # Without a path, Site would send a line per request through the process log.
        if self.logPath is not None:
            super().log(request)

    def buildProtocol(self, addr: Any) -> Any:
        peer = str(getattr(addr, "host", addr))
        if self.open >= self.limits.max_connections:
            return self._refuse(f"{self.serving} is serving as many connections as it can: retry later")
        if self.open_by_peer[peer] >= self.limits.max_connections_per_peer:
            return self._refuse("too many connections from your address: retry later")
        channel = super().buildProtocol(addr)
        channel.read_timeout = self.limits.read_timeout
        channel.closed = lambda: self._closed(peer)
        channel.refusals = self.refusals
        self.open += 1
        self.accepted += 1
        self.open_by_peer[peer] += 1
        return channel

    def _closed(self, peer: str) -> None:
        self.open -= 1
        self.open_by_peer[peer] -= 1
        if not self.open_by_peer[peer]:
            del self.open_by_peer[peer]
        if self.refused and self.open < self.limits.max_connections:
            log.info("connections below the cap again; {refused} refused meanwhile", refused=self.refused)
            self.refused = 0

    def _refuse(self, message: str) -> Protocol:
        if not self.refused:
            log.warn("{serving}: refusing connections: {open} open, the cap is {cap} ({per_peer} per address)",
                     serving=self.serving, open=self.open, cap=self.limits.max_connections,
                     per_peer=self.limits.max_connections_per_peer)
        self.refused += 1
        self.refusals[503] += 1
        return Refusal(self, error_response_bytes(503, message, _RETRY_AFTER))


class Refusal(Protocol):
    """Writes its answer at once and closes once the request head is in (or after LINGER)."""

    def __init__(self, site: ApiSite, answer: bytes) -> None:
        self.site = site
        self.answer = answer
        self._tail = b""
        self._timer: Any = None

    def connectionMade(self) -> None:
        self.transport.write(self.answer)
        if self.site.lingering >= self.site.max_lingering:
            self.transport.loseConnection()
            return
        self.site.lingering += 1
        self._timer = self.site.reactor.callLater(LINGER, self.transport.abortConnection)

    def dataReceived(self, data: bytes) -> None:
        seen = self._tail + data
        if b"\r\n\r\n" in seen:
            self.transport.loseConnection()
        self._tail = seen[-3:]

    def connectionLost(self, reason: Any = None) -> None:
        if self._timer is not None:
            self.site.lingering -= 1
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
