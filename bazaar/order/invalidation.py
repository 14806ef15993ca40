"""The leader's push to the front end after a trade: GET /cache/<name> (SPEC §4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import treq
from twisted.logger import Logger
from twisted.web.client import HTTPConnectionPool

from bazaar.config import Config

log = Logger()


class CacheInvalidator:
    def __init__(self, reactor: Any, config: Config) -> None:
        self._enabled = config.frontend.cache
        self._base = f"http://{config.frontend.address}/cache/"
        self._timeout = config.timeouts.http
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 4

    def __call__(self, name: str) -> None:
        """Fire and forget: the front end also drops the entry itself when the trade succeeds."""
        if not self._enabled:
            return
        d = treq.get(self._base + quote(name, safe=""), timeout=self._timeout, pool=self._pool)
        d.addCallback(treq.content)
        d.addErrback(lambda f: log.debug("cache invalidation of {name} failed: {error}",
                                         name=name, error=f.getErrorMessage()))

    def close(self) -> Any:
        return self._pool.closeCachedConnections()
