"""Server streams that cannot tie up handler threads for good.

grpcio runs a server stream on a handler thread, and each message's send blocks that thread
until the reader's HTTP/2 window takes it. A reader that stops reading, with no deadline or a
long one, would keep the thread as long as it likes; enough of them and no thread is left for
any other call. So streams take a slot (a bounded number run at once, the rest are refused at
once), and a watchdog cancels a stream whose reader takes no message for a while or that
outlives its limit: the cancelled send returns and the thread is free again.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable


class Slot:
    """One of a StreamSlots' places; giving it back twice gives it back once."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._release()


class StreamSlots:
    def __init__(self, limit: int) -> None:
        self._free = threading.Semaphore(limit)

    def take(self) -> Slot | None:
        """A slot, or None when `limit` streams run already."""
        if not self._free.acquire(blocking=False):
            return None
        return Slot(self._free.release)


class Watchdog:
    """Cancels a stream (`cancel`) once a message has waited `stall` seconds for its reader,
    or once the stream has run `limit` seconds. Call `sending` before each message goes out
    (a yield) and `sent` when the next is asked for. A stream is only ever cancelled, never
    ended early: its reader must not take a part of a log for the whole of it."""

    def __init__(self, cancel: Callable[[], Any], stall: float, limit: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cancel = cancel
        self._stall = stall
        self._clock = clock
        self._end = clock() + limit
        self._timer: threading.Timer | None = None

    def sending(self) -> None:
        self.sent()
        self._timer = threading.Timer(max(0.0, min(self._stall, self._end - self._clock())), self._cancel)
        self._timer.daemon = True
        self._timer.start()

    def sent(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
