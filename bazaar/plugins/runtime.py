"""The root service of every Bazaar process: its log (logs.py), and the interpreter's garbage
collector and C heap tuned for a server.

Python collects its youngest generation every 700 new container objects. A front end under
load has thousands in flight (64 requests, each with its Deferreds, headers and protobuf
messages), so nearly every one outlived a few collections and was promoted, and the oldest
generation, traversed whole, grew with them: the collector took a sixth of the front end's
time (measured: 1.5 s in 10 s of trading). Collected every 10,000 objects, a request is
usually answered, and its objects freed, before the first collection that could promote it.

glibc's malloc adapts its thresholds: once a block it had mapped on its own (a mebibyte of a
snapshot or a catch-up stream) is freed, blocks up to that size come from its heaps instead,
and a heap keeps up to twice that free at its top. malloc_trim gives back only the main heap's
top, not those of the heaps it makes for threads; so a replica that had installed a snapshot,
its check and copy on worker threads, held some 20 MiB more than its peers for good. Fixed
thresholds keep the values glibc starts with: blocks of 128 KiB and more are mapped on their
own and returned when freed, and a heap gives back what it has free at its top beyond 128 KiB.
Trading maps next to nothing so (measured with strace, 3 s at 64 connections: no mmap in the
front end or a follower, 21 in the leader). Measured on snapshots of 100,000 and 1,000,000
entries, with the check's smaller reads (snapshot.py): the replica that installed one held
86-87 MiB afterwards, its peers 82-84, against 94-109 MiB before; the leader that sent it
83-84 MiB, against 88-93.
"""

from __future__ import annotations

import ctypes
import gc

from twisted.logger import Logger

from bazaar.plugins.logs import LoggedService

log = Logger()

GC_THRESHOLDS = (10_000, 10, 10)

# mallopt's parameters (malloc.h) and the values they are fixed at.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD = MMAP_THRESHOLD = 128 * 1024


def fix_malloc_thresholds() -> bool:
    """Fix glibc's trim and mmap thresholds (the module's docstring says why); False where the
    C library has no mallopt (not glibc) or refuses."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


class ProcessRoot(LoggedService):
    def startService(self) -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        fixed = fix_malloc_thresholds()  # before any service starts a thread
        super().startService()
        if not fixed:
            log.info("the C library's malloc thresholds are left as they are (no glibc mallopt)")
