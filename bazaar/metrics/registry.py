"""One registry per process, and the base of the collectors that read a process's objects.

A process gets its own CollectorRegistry, not prometheus_client's global REGISTRY: unit tests
build several processes' service trees in one interpreter, and each tree must show its own
metrics only (the global registry would refuse a second front end's names as duplicates, and
keep every earlier test's counts).

Scrapes run on the reactor's thread pool (prometheus_client's MetricsResource is a WSGI
resource), while the objects read belong to the reactor thread. So collectors only read
attributes and copy containers in one call that holds the GIL throughout (`list(d.items())`,
`sorted(d)` of str and int keys), and never call code that changes state; a figure may be a
moment older than the next one, never torn.
"""

from __future__ import annotations

from typing import Any, Hashable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.logger import Logger

log = Logger()

# Seconds: from a cache hit (well under a millisecond) to a request's whole deadline.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def process_registry() -> CollectorRegistry:
    """A new registry with the process's own collectors (CPU, memory, descriptors, the Python
    version, garbage collections): read from /proc when scraped, nothing in between."""
    # Without names: the object collectors describe nothing, and are still asked when a
    # scrape names the families it wants (?name[]=...).
    registry = CollectorRegistry(support_collectors_without_names=True)
    # No `_created` series beside every counter and histogram: a process's start time is
    # process_start_time_seconds already, and they would double what each scrape carries.
    # (A switch of prometheus_client's for the whole interpreter: this is its one process.)
    disable_created_metrics()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class ObjectCollector:
    """Yields `families()`, or nothing if reading them fails: a metric's bug is logged, and
    /metrics still answers 200 with every other collector's families."""

    def families(self) -> Iterator[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self.families())
        except Exception:
            log.failure("collecting {collector} failed", collector=type(self).__name__)
            return []


class TimedCalls:
    """A counter of calls and a histogram of their seconds, for a hook on a hot path: each
    label set's two children are looked up once, under a key of the caller's (values it has at
    hand, turned into labels only the first time). Every key is kept for good, as is every
    label set: both must come from a small set the server bounds (a route template, a method
    it serves), never from what a client may make up (a raw HTTP method, a path)."""

    def __init__(self, registry: CollectorRegistry, counted: tuple[str, str, Sequence[str]],
                 timed: tuple[str, str, Sequence[str]]) -> None:
        """`counted` and `timed`: each metric's (name, help, label names)."""
        self._counter = Counter(*counted, registry=registry)
        self._histogram = Histogram(*timed, buckets=LATENCY_BUCKETS, registry=registry)
        self._children: dict[Hashable, tuple[Any, Any]] = {}

    def children(self, key: Hashable) -> tuple[Any, Any] | None:
        """The (counter, histogram) children made for `key`, if any yet."""
        return self._children.get(key)

    def add(self, key: Hashable, counted: Sequence[str], timed: Sequence[str]) -> tuple[Any, Any]:
        """Make `key`'s children from their label values (two threads may race here: both
        get children of the same label values, which prometheus_client shares)."""
        children = self._children[key] = (self._counter.labels(*counted), self._histogram.labels(*timed))
        return children
