"""Giving up after a failed write: a process whose store may no longer match what it holds in
memory stops serving at once and exits with a failure status, so that a supervisor restarts
it and it reloads its state from disk.
"""

from __future__ import annotations

import atexit
import os
from typing import Any, Callable

from twisted.logger import Logger

log = Logger()

EXIT_STATUS = 70  # EX_SOFTWARE: the process cannot go on, a restart can


def give_up(reactor: Any, what: str, error: str, not_serving: Callable[[], None]) -> None:
    """Report NOT_SERVING (peers and health checks see it at once), then stop the reactor and
    exit with EXIT_STATUS once twistd has cleaned up (its pidfile removed). Once per reactor:
    every write queued behind the failed one fails too."""
    if getattr(reactor, "_bazaar_given_up", False):
        return
    reactor._bazaar_given_up = True
    log.critical("{what} failed: {error}; not serving, and stopping for a restart", what=what, error=error)
    not_serving()
    if reactor.running:
        # twistd exits 0 after the reactor stops, whatever stopped it; this runs after its
        # own cleanup, at interpreter exit.
        atexit.register(os._exit, EXIT_STATUS)
        reactor.stop()
