"""A front end's metrics: its HTTP requests (timed where the site finishes them, not in the
routes), its connections, cache, leader selections, trades, and the batches it sends.

A request is labelled with the route template it matched ("/stocks/{name}", never the path a
client made up; "other" when none did), its method ("other" beyond the usual seven) and its
status code ("aborted": the connection was lost before the answer was written).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Pattern

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from werkzeug.routing import Map

from bazaar.frontend.app import FrontEnd
from bazaar.frontend.leader import ADOPTED, ASSIGNED, NO_LEADER, NONE, NOT_LEADER, START, UNREACHABLE
from bazaar.frontend.site import ApiSite
from bazaar.metrics.registry import ObjectCollector, TimedCalls, log

OTHER = "other"
ABORTED = "aborted"
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
CAUSES = (START, UNREACHABLE, NOT_LEADER, NO_LEADER)
RESULTS = (ADOPTED, ASSIGNED, NONE)
# Every outcome TradePlacer counts, shown from the start at 0 (a rate needs the series to exist).
TRADE_OUTCOMES = ("executed", "stock_not_found", "invalid_type", "invalid_quantity", "not_enough_stock",
                  "key_reused", "unavailable", "unknown")
# Distinct (path, method, status) whose children are kept by the raw path, which spares the
# route's matching: the paths clients use again and again. Beyond these (names made up by the
# thousand), a request's route is matched each time and its children kept by route. Only
# requests of a usual method and a path no longer than KEPT_PATH bytes are kept so (a stock's
# name, percent-encoded), so that what a client makes up costs at most a few megabytes here.
KNOWN_PATHS = 4096
KEPT_PATH = 1024
_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_ANY_SEGMENT = ("[^/]+", "[^/]{1,}")


class Routes:
    """The route a request's path segments match, by the app's url_map: a static segment must
    be equal, a variable one non-empty (and match its converter's pattern, if it has its own).
    New routes in app.py are labelled by their template without a change here."""

    def __init__(self, url_map: Map) -> None:
        self._by_length: dict[int, list[tuple[tuple[bytes | Pattern[bytes] | None, ...], str]]] = {}
        for rule in url_map.iter_rules():
            converters = getattr(rule, "_converters", {})
            parts: list[bytes | Pattern[bytes] | None] = []
            for part in rule.rule.lstrip("/").split("/"):
                variable = _VARIABLE.fullmatch(part)
                if variable is None:
                    parts.append(part.encode())
                    continue
                regex = getattr(converters.get(variable.group(1)), "regex", "[^/]+")
                parts.append(None if regex in _ANY_SEGMENT else re.compile(regex.encode()))
            template = _VARIABLE.sub(r"{\1}", rule.rule)
            candidates = self._by_length.setdefault(len(parts), [])
            if all(template != known for _, known in candidates):  # one rule per method: once
                candidates.append((tuple(parts), template))
        for candidates in self._by_length.values():  # the most static first
            candidates.sort(key=lambda c: sum(not isinstance(p, bytes) for p in c[0]))

    def name(self, segments: list[bytes]) -> str:
        for parts, template in self._by_length.get(len(segments), ()):
            for part, segment in zip(parts, segments):
                if part is None:
                    if not segment:
                        break
                elif isinstance(part, bytes):
                    if part != segment:
                        break
                elif part.fullmatch(segment) is None:
                    break
            else:
                return template
        return OTHER


class HttpMetrics:
    """ApiSite.observe: counts and times each request."""

    def __init__(self, registry: CollectorRegistry, url_map: Map) -> None:
        self._routes = Routes(url_map)
        self._calls = TimedCalls(
            registry,
            ("bazaar_http_requests_total", "HTTP requests the public port answered, by route, method and status code.",
             ["route", "method", "status"]),
            ("bazaar_http_request_duration_seconds",
             "Seconds from a request's arrival (whole) to its answer's last byte written, by route and method.",
             ["route", "method"]),
        )

        self._by_path: dict[tuple[bytes, bytes, int | None], tuple[Any, Any]] = {}

    def __call__(self, request: Any, seconds: float, finished: bool) -> None:
        try:  # called as the answer is finished: a metric's bug must not break the request
            method, code = request.method, request.code if finished else None
            seen = (request.path, method, code)
            children = self._by_path.get(seen)
            if children is None:
                children = self._children(request, METHODS.get(method, OTHER), code)
                if len(self._by_path) < KNOWN_PATHS and method in METHODS and len(request.path) <= KEPT_PATH:
                    self._by_path[seen] = children
            children[0].inc()
            children[1].observe(seconds)
        except Exception:
            log.failure("counting an HTTP request failed")

    def _children(self, request: Any, method: str, code: int | None) -> tuple[Any, Any]:
        """`method`: its label (a usual method's name, or "other"), never the raw bytes a
        client sent: the children are kept by a key of label values, of which there are few."""
        # Klein moves the segments it matched from postpath to prepath: together, the path's.
        route = self._routes.name(request.prepath + request.postpath)
        status = ABORTED if code is None else str(code) if 100 <= code <= 599 else OTHER
        key = (route, method, status)
        children = self._calls.children(key)
        if children is None:
            children = self._calls.add(key, key, (route, method))
        return children


class FrontEndCollector(ObjectCollector):
    def __init__(self, front_end: FrontEnd, site: ApiSite) -> None:
        self._front_end = front_end
        self._site = site

    def families(self) -> Iterator[Metric]:
        site = self._site
        yield GaugeMetricFamily("bazaar_http_connections_open", "Client connections open on the public port.",
                                value=site.open)
        yield CounterMetricFamily("bazaar_http_connections", "Client connections the public port accepted.",
                                  value=site.accepted)
        yield _by("bazaar_http_refused", "Answers written without serving a request: 503 at the connection caps, "
                  "408, 413, 414, 431 and 400 by the HTTP channel.", "status",
                  ((str(code), n) for code, n in sorted(list(site.refusals.items()))))
        yield from self._cache()
        yield from self._leaders()
        trades = self._front_end.trades.outcomes
        yield _by("bazaar_frontend_trades", "Trades (POST /orders that reached the leader) by outcome.", "outcome",
                  _with_zeros(TRADE_OUTCOMES, list(trades.items())))
        batches = CounterMetricFamily("bazaar_frontend_order_batches", "RequestBatch calls sent to each replica.",
                                      labels=["replica"])
        orders = CounterMetricFamily("bazaar_frontend_order_batch_orders", "Orders sent in those calls.",
                                     labels=["replica"])
        for replica_id, replica in sorted(self._front_end.leaders.replicas.items()):
            batcher = getattr(replica, "orders", None)  # a ReplicaClient's (not a test's fake's)
            if batcher is None:
                continue
            batches.add_metric([str(replica_id)], batcher.batches_sent)
            orders.add_metric([str(replica_id)], batcher.items_sent)
        yield from (batches, orders)

    def _cache(self) -> Iterator[Metric]:
        cache = self._front_end.cache
        if cache is None:
            return  # the cache is off
        for name, text, value in (
            ("hits", "Stock lookups answered from the cache.", cache.hits),
            ("misses", "Stock lookups the cache could not answer (looked up in the catalog).", cache.misses),
            ("evictions", "Entries dropped to make room (least recently used first).", cache.evictions),
            ("invalidations", "Invalidations: the leader's pushes and this front end's own executed trades.",
             cache.invalidations),
            ("invalidated_entries", "Invalidations that dropped a cached entry.", cache.invalidated),
        ):
            yield CounterMetricFamily(f"bazaar_cache_{name}", text, value=value)
        yield GaugeMetricFamily("bazaar_cache_entries", "Stocks in the cache.", value=len(cache))
        yield GaugeMetricFamily("bazaar_cache_capacity", "Stocks the cache holds at most.", value=cache.capacity)

    def _leaders(self) -> Iterator[Metric]:
        leaders = self._front_end.leaders
        yield _by("bazaar_leader_selections", "Leader selection rounds, by why they started.", "cause",
                  _with_zeros(CAUSES, list(leaders.selection_causes.items())))
        yield _by("bazaar_leader_selection_results", "Leader selection rounds, by how they ended.", "result",
                  _with_zeros(RESULTS, list(leaders.selection_results.items())))
        current = leaders.current
        yield GaugeMetricFamily("bazaar_frontend_leader_replica", "The id of the replica this front end uses as "
                                "leader (0: none now).", value=0 if current is None else current.replica_id)


def _by(name: str, documentation: str, label: str, values: Iterable[tuple[str, float]]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in values:
        family.add_metric([value], count)
    return family


def _with_zeros(known: Iterable[str], counted: list[tuple[str, int]]) -> list[tuple[str, int]]:
    counts = dict.fromkeys(known, 0)
    counts.update(counted)
    return list(counts.items())


def register_frontend(registry: CollectorRegistry, front_end: FrontEnd, site: ApiSite) -> None:
    site.observe = HttpMetrics(registry, front_end.app.url_map)
    registry.register(FrontEndCollector(front_end, site))
