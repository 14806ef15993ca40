"""The front end's internal endpoints, on a listener of their own that takes only clients with
a certificate of the cluster's authority (docs/security.md): the leader's cache invalidation
push (`POST /cache/invalidations`, or `GET /cache/<name>` for one name), and the cache's full
report, which shows what other clients traded and when. On the public port, none exists
(`GET /cache` there gives counters only).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from bazaar.core.lru import LRUCache
from bazaar.frontend.app import ApiError, JsonKlein, cache_counters, error_response, json_response
from bazaar.tls.identity import Identity, Role

# The identity of a request's client (None: none, or no certificate); and whether the listener
# checks certificates at all (not with TLS off, on loopback only).
Who = Callable[[IRequest], Identity | None]


class CacheControl:
    app = JsonKlein()
    app.url_map.merge_slashes = False

    def __init__(self, cache: LRUCache[Any] | None, who: Who | None) -> None:
        """`who` is None when the listener is plaintext (TLS off): anyone on loopback."""
        self.cache = cache
        self._who = who

    @app.handle_errors
    def _error(self, request: IRequest, failure: Failure) -> bytes:
        return error_response(request, failure.value)

    def _allow(self, request: IRequest, roles: set[Role]) -> None:
        if self._who is None:
            return
        identity = self._who(request)
        if identity is None or identity.role not in roles:
            raise ApiError(403, "this endpoint is for the cluster's own processes")

    @app.route("/cache/<name>", methods=["GET"])
    def invalidate(self, request: IRequest, name: str) -> bytes:
        """The leader's push after the catalog applied a trade of `name`."""
        self._allow(request, {Role.REPLICA})
        if self.cache is not None:
            self.cache.invalidate(name)
        return json_response(request, 200, {"data": {}})

    @app.route("/cache/invalidations", methods=["POST"])
    def invalidate_names(self, request: IRequest) -> bytes:
        """The leader's push after the catalog applied trades of these names: one request for
        every name waiting (`GET /cache/<name>` does one)."""
        self._allow(request, {Role.REPLICA})
        names = _names(request.content.read())
        if self.cache is not None:
            for name in names:
                self.cache.invalidate(name)
        return json_response(request, 200, {"data": {}})

    @app.route("/cache", methods=["DELETE"])
    def invalidate_all(self, request: IRequest) -> bytes:
        """A new leader's first push: drop everything, since it cannot know which pushes of
        its predecessor's were lost."""
        self._allow(request, {Role.REPLICA})
        if self.cache is not None:
            self.cache.invalidate_all()
        return json_response(request, 200, {"data": {}})

    @app.route("/cache", methods=["GET"])
    def report(self, request: IRequest) -> bytes | Deferred:
        """The cache at work, for the evaluation: counters, what is cached (least recently used
        first) and the log of inserts, evictions and invalidations after `?since=<seq>`."""
        self._allow(request, {Role.REPLICA, Role.OPERATOR, Role.FRONTEND})
        cache = self.cache
        if cache is None:
            return json_response(request, 200, {"data": {"enabled": False}})
        since = since_argument(request)
        events = [{"seq": e.seq, "time": e.time, "kind": e.kind, "name": e.name} for e in cache.events(since)]
        data = {**cache_counters(cache), "names": cache.names(), "events": events}
        return json_response(request, 200, {"data": data})


MAX_PUSHED_NAMES = 1000
_BAD_NAMES = f'the body must be {{"names": [...]}} with 1 to {MAX_PUSHED_NAMES} stock names'


def _names(body: bytes) -> list[str]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, _BAD_NAMES) from None
    names = document.get("names") if isinstance(document, dict) and set(document) == {"names"} else None
    if not isinstance(names, list) or not 0 < len(names) <= MAX_PUSHED_NAMES \
            or not all(isinstance(n, str) for n in names):
        raise ApiError(400, _BAD_NAMES)
    return names


def since_argument(request: IRequest) -> int:
    text = request.args.get(b"since", [b"-1"])[0].decode("ascii", "replace")
    if re.fullmatch(r"-?[0-9]{1,18}", text) is None:
        raise ApiError(400, "since must be a whole number of at most 18 digits (an event's seq)")
    return int(text)
