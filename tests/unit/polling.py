"""Waiting in a test on the running reactor for something other threads or later turns do:
polled with a deadline, never a sleep that hopes it was long enough."""

from __future__ import annotations

from typing import Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

STEP = 0.01


def reactor_until(condition: Callable[[], object], seconds: float = 5.0) -> Deferred:
    """Fires with whether `condition()` became true within `seconds`, checked every STEP while
    the reactor runs."""

    async def poll() -> bool:
        for _ in range(max(1, round(seconds / STEP))):
            if condition():
                return True
            await deferLater(reactor, STEP, lambda: None)
        return bool(condition())

    return Deferred.fromCoroutine(poll())
