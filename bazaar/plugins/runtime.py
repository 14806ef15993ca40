"""The root service of every Bazaar process: its log (logs.py), and the interpreter's garbage
collector tuned for a server.

Python collects its youngest generation every 700 new container objects. A front end under
load has thousands in flight (64 requests, each with its Deferreds, headers and protobuf
messages), so nearly every one outlived a few collections and was promoted, and the oldest
generation, traversed whole, grew with them: the collector took a sixth of the front end's
time (measured: 1.5 s in 10 s of trading). Collected every 10,000 objects, a request is
usually answered, and its objects freed, before the first collection that could promote it.
"""

from __future__ import annotations

import gc

from bazaar.plugins.logs import LoggedService

GC_THRESHOLDS = (10_000, 10, 10)


class ProcessRoot(LoggedService):
    def startService(self) -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        super().startService()
