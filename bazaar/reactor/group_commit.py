"""Group commit: one writer thread, and every write that arrives while it is busy joins the next batch.

A durable commit costs an fsync (about 0.3 ms here). Doing one per request on the reactor
thread would stall the process for each; here the reactor hands items over and gets a Deferred
per item, fired after the batch holding it is on disk. Under load batches grow by themselves,
so throughput rises while each commit stays one fsync. An idle writer starts at the end of the
reactor's turn, not at the first write: the writes one event makes (a batch of trades, a
follower's batch of orders) then share one fsync instead of the first paying for its own.

The writer is a daemon thread, so that it never keeps a process alive by itself: when a
process's start fails after the writer started (its gRPC port taken), the main thread ends
and the process exits, non-zero, for systemd or compose to restart it, instead of hanging.
No acknowledged write can be lost to that: an item's Deferred fires only on the reactor,
after `flush` returned, and `flush` returns once its transaction is committed and fsync'd; an
orderly stop (stopService) writes everything submitted before it, the batch on the thread
first, before joining the thread, and takes nothing after. A process
that ends otherwise only interrupts a batch nobody was told about, and the store's
transaction is then rolled back at its next open.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any, Callable, Sequence

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

log = Logger()


class _WriterPool(ThreadPool):
    """A thread pool of daemon threads (the module's docstring says why none is lost)."""

    threadFactory = functools.partial(threading.Thread, daemon=True)


class GroupCommitter(Service):
    """Runs `flush(items) -> results` (one result per item) on a single dedicated thread."""

    def __init__(
        self,
        reactor: Any,
        flush: Callable[[list[Any]], Sequence[Any]],
        name: str,
        max_batch: int = 2048,
        broken: Callable[[Failure], None] | None = None,
    ) -> None:
        """`broken` is told of the first failed batch: nothing is written after it."""
        self._reactor = reactor
        self._on_broken = broken
        self._flush = flush
        self.name = name
        self._max_batch = max_batch
        self._pending: list[tuple[Any, Deferred | None]] = []
        self._busy: Deferred | None = None
        self._start_call: Any = None
        self._pool: ThreadPool | None = None
        self.batches = 0
        # Told of each batch committed: its size and its seconds on the writer, hand-off to
        # result (the metrics' histograms; None: nothing is timed).
        self.on_batch: Callable[[int, float], None] | None = None
        self._batch_started = 0.0
        self._submitted = 0
        self._completed = 0
        self._barriers: list[tuple[int, Deferred]] = []
        # Called on the reactor as each batch is about to be taken: the owner submits what it
        # held back for it (a leader's appends of the trades placed meanwhile).
        self.gather: Callable[[], None] | None = None
        self._gathering = False
        self._draining: Deferred | None = None  # stopping: fires once what was submitted is written
        # After a failed batch the store's state is unknown: every later write and barrier
        # fails too, so nothing is ever confirmed on top of a lost write.
        self._broken: Failure | None = None

    def startService(self) -> None:
        self._pool = _WriterPool(minthreads=1, maxthreads=1, name=f"{self.name}-writer")
        self._pool.start()
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        if self._pool is None or self._draining is not None:
            return self._draining
        if self._start_call is not None:
            self._start_call.cancel()  # the batch it would start is started here
        # Everything submitted before the stop is still written, batch after batch (the one on
        # the thread first), before the thread is joined; nothing submitted after is taken.
        drained = self._draining = Deferred()
        self._start_batch_now()
        self._end_if_drained()
        return None if drained.called else drained

    def _end_if_drained(self) -> None:
        if self._draining is None or self._busy is not None:
            return
        pool, self._pool = self._pool, None
        assert pool is not None, "draining only while the writer runs"
        pool.stop()
        drained, self._draining = self._draining, None
        drained.callback(None)

    def submit(self, item: Any) -> Deferred:
        """Queue `item`; the Deferred fires with its result once its batch is committed."""
        return self.submit_all([item])

    def submit_all(self, items: Sequence[Any]) -> Deferred:
        """Queue `items`, in order; the Deferred fires with the last one's result once it is
        committed (and so are the others: batches commit in order). One Deferred for many
        items, because a follower's batch of a thousand orders needs only its end reported."""
        if not self._taking:
            raise RuntimeError(f"{self.name}: writer is not running")
        if self._broken is not None:
            return fail(self._broken)
        if not items:
            raise ValueError("nothing to submit")
        d: Deferred = Deferred()
        self._pending.extend((item, None) for item in items[:-1])
        self._pending.append((items[-1], d))
        self._submitted += len(items)
        self._start_batch()
        return d

    def wake(self) -> None:
        """Something waits for `gather`: take a batch at the end of the reactor's turn, or
        once the batch on the writer is done."""
        if not self._taking:
            raise RuntimeError(f"{self.name}: writer is not running")
        self._start_batch()

    @property
    def _taking(self) -> bool:
        """Whether new writes are taken: running, and not stopping (except what `gather`
        hands over as the last batches start)."""
        return self._pool is not None and (self._draining is None or self._gathering)

    def barrier(self) -> Deferred:
        """Fires once everything submitted so far is committed; fails if any write failed."""
        if self._broken is not None:
            return fail(self._broken)
        if self._completed >= self._submitted:
            return succeed(None)
        d: Deferred = Deferred()
        self._barriers.append((self._submitted, d))
        return d

    def _start_batch(self) -> None:
        if self._busy is None and self._start_call is None and self._pool is not None and not self._gathering:
            self._start_call = self._reactor.callLater(0, self._start_batch_now)

    def _start_batch_now(self) -> None:
        self._start_call = None
        if self._busy is not None or self._pool is None:
            return
        self._gather()
        if not self._pending:
            return
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        self.batches += 1
        if self.on_batch is not None:
            self._batch_started = time.perf_counter()
        busy = deferToThreadPool(self._reactor, self._pool, self._flush, [item for item, _ in batch])
        self._busy = busy
        busy.addBoth(self._finish, batch)

    def _gather(self) -> None:
        if self.gather is None:
            return
        self._gathering = True  # what it submits is taken now: no batch start of its own
        try:
            self.gather()
        finally:
            self._gathering = False

    def _finish(self, results: Any, batch: list[tuple[Any, Deferred | None]]) -> None:
        self._busy = None
        if isinstance(results, Failure):
            log.failure("{name}: a batch of {count} writes failed", results, name=self.name, count=len(batch))
            self._broken = results
            if self._on_broken is not None:
                self._on_broken(results)
            self._gather()  # what was held back for the next batch fails too, and is told so
            queued, self._pending = self._pending, []
            barriers, self._barriers = self._barriers, []
            for _, d in [*batch, *queued]:
                if d is not None:
                    d.errback(results)
            for _, d in barriers:
                d.errback(results)
            self._end_if_drained()
            return
        if self.on_batch is not None:
            try:  # a metric never stands in the way of a write's answer
                self.on_batch(len(batch), time.perf_counter() - self._batch_started)
            except Exception:
                log.failure("{name}: recording a batch failed", name=self.name)
        for (_, d), result in zip(batch, results, strict=True):
            if d is not None:
                d.callback(result)
        self._completed += len(batch)
        passed = [d for upto, d in self._barriers if upto <= self._completed]
        self._barriers = [(upto, d) for upto, d in self._barriers if upto > self._completed]
        for d in passed:
            d.callback(None)
        self._start_batch_now()  # what queued meanwhile has waited long enough
        self._end_if_drained()
