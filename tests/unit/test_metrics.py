"""Each process's GET /metrics, scraped over loopback from the service tree its plugin builds,
and the collectors that read the processes' own counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from twisted.application.internet import TCPServer
from twisted.application.service import IServiceCollection
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bazaar.catalog.store import CatalogStore
from bazaar.chaos.processes import free_ports
from bazaar.config import load_config
from bazaar.core.learner import CommittedTrade
from bazaar.core.lru import LRUCache
from bazaar.metrics.server import (
    METRICS_CONNECTIONS, METRICS_DESCRIPTORS, METRICS_IDLE_TIMEOUT, METRICS_PER_PEER, METRICS_READ_TIMEOUT, MetricsSite,
)
from bazaar.core.stock import table_id
from bazaar.order.replica import Replica
from bazaar.order.store import OrderStore
from bazaar.plugins import catalog, frontend, order
from bazaar.tools.cluster import make_certificates
from bazaar.v1 import catalog_pb2, order_pb2
from tests.unit.http_wire import Wire
from tests.unit.test_order_log import ManualCommitter, fired
from tests.unit.test_order_servicer import Channels, orders


def config_file(tmp_path: Path) -> tuple[str, dict[str, int]]:
    """A cluster whose processes serve their metrics on free loopback ports (by name)."""
    names = ["catalog", "order-1", "order-2", "order-3", "frontend"]
    ports = dict(zip(names, free_ports(len(names))))
    path = tmp_path / "c.toml"
    here = "127.0.0.1:{}".format
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[catalog]\naddress = "127.0.0.1:56892"\nmetrics = "{here(ports["catalog"])}"\n'
        f'[frontend]\ncache_size = 3\nmetrics = "{here(ports["frontend"])}"\n'
        "[replicas]\n" + "".join(
            f'{i} = {{ address = "127.0.0.1:{56893 + i}", metrics = "{here(ports[f"order-{i}"])}" }}\n'
            for i in (1, 2, 3)
        )
    )
    make_certificates(load_config(path), say=lambda _: None)
    return str(path), ports


def tree(module: Any, path: str, *args: str) -> tuple[Any, Any]:
    """The process's service (its first child) and its metrics server (its last)."""
    options = module.Options()
    options.parseOptions(["--config", path, *args])
    children = list(IServiceCollection(module.makeService(options)))
    assert isinstance(children[-1].args[1], MetricsSite)
    return children[0], children[-1]


async def get(server: Any, path: str = "/metrics", method: str = "GET") -> tuple[int, str]:
    """`method path` on the metrics server, started for this request only."""
    server.startService()
    try:
        port = server._port.getHost().port
        response = await treq.request(method, f"http://127.0.0.1:{port}{path}")
        return response.code, await response.text()
    finally:
        await server.stopService()


async def scrape(server: Any) -> dict[str, Any]:
    status, text = await get(server)
    assert status == 200, text
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    """The one sample named `sample` (with its suffix: _total, _bucket ...) with `labels`."""
    matching = [s.value for family in families.values() for s in family.samples
                if s.name == sample and s.labels == labels]
    assert len(matching) == 1, (sample, labels, matching)
    return matching[0]


@pytest_twisted.ensureDeferred
async def test_the_front_end_serves_its_metrics_at_the_configured_address(tmp_path):
    path, ports = config_file(tmp_path)
    _, server = tree(frontend, path)
    assert server.args[0] == ports["frontend"] and server.kwargs == {"interface": "127.0.0.1"}
    families = await scrape(server)
    types = {name: families[name].type for name in (
        "bazaar_http_requests", "bazaar_http_request_duration_seconds", "bazaar_http_connections_open",
        "bazaar_cache_hits", "bazaar_cache_misses", "bazaar_cache_evictions", "bazaar_cache_invalidations",
        "bazaar_leader_selections", "bazaar_leader_selection_results", "bazaar_frontend_trades",
        "bazaar_frontend_order_batches", "process_cpu_seconds", "python_info",
    )}
    assert types == {
        "bazaar_http_requests": "counter", "bazaar_http_request_duration_seconds": "histogram",
        "bazaar_http_connections_open": "gauge", "bazaar_cache_hits": "counter", "bazaar_cache_misses": "counter",
        "bazaar_cache_evictions": "counter", "bazaar_cache_invalidations": "counter",
        "bazaar_leader_selections": "counter", "bazaar_leader_selection_results": "counter",
        "bazaar_frontend_trades": "counter", "bazaar_frontend_order_batches": "counter",
        "process_cpu_seconds": "counter", "python_info": "gauge",
    }
    assert value(families, "bazaar_cache_capacity") == 3
    assert value(families, "bazaar_http_connections_open") == 0
    assert {s.labels["cause"] for s in families["bazaar_leader_selections"].samples
            if s.name.endswith("_total")} == {"start", "unreachable", "not_leader", "no_leader"}
    assert value(families, "bazaar_frontend_trades_total", outcome="executed") == 0
    assert {s.labels["replica"] for s in families["bazaar_frontend_order_batches"].samples} == {"1", "2", "3"}


@pytest_twisted.ensureDeferred
async def test_only_get_metrics_is_served(tmp_path):
    path, _ = config_file(tmp_path)
    _, server = tree(frontend, path)
    for other in ("/", "/metrics/", "/metrics/x", "/favicon.ico", "/stocks/tesla"):
        status, _ = await get(server, other)
        assert status == 404, other
    status, text = await get(server, "/metrics", "POST")
    assert status == 405, text


def test_a_process_whose_config_turns_metrics_off_serves_none(tmp_path):
    path = tmp_path / "off.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[frontend]\nmetrics = false\n')
    make_certificates(load_config(path), say=lambda _: None)
    options = frontend.Options()
    options.parseOptions(["--config", str(path)])
    servers = [s for s in IServiceCollection(frontend.makeService(options)) if isinstance(s, TCPServer)]
    assert servers and not any(isinstance(s.args[1], MetricsSite) for s in servers)


@pytest_twisted.ensureDeferred
async def test_the_catalog_shows_how_far_it_has_applied(tmp_path):
    path, ports = config_file(tmp_path)
    service, server = tree(catalog, path)
    assert server.args[0] == ports["catalog"]
    families = await scrape(server)
    assert "bazaar_catalog_applied_through" not in families, "not started: nothing known yet"
    assert families["bazaar_group_commit_batch_size"].type == "histogram"
    assert families["bazaar_grpc_server_calls"].type == "counter"
    service.store = CatalogStore(tmp_path / "catalog", load_config(path).stocks)  # as startService opens it
    try:
        assert value(await scrape(server), "bazaar_catalog_applied_through") == -1
        service.store.apply([[CommittedTrade(0, "tesla", "buy", 5), CommittedTrade(1, "ford", "sell", 1)]])
        assert value(await scrape(server), "bazaar_catalog_applied_through") == 1
    finally:
        service.store.close()


def replica_for(service: Any, replica_id: int = 1) -> tuple[Replica, ManualCommitter]:
    """The replica the service would make at start (with its metrics' hook), on a manual
    committer and a clock."""
    config = service.config
    store = OrderStore(service.config.replica_dir(replica_id), table_id(config.stocks))
    committer = ManualCommitter(store)
    replica = Replica(Clock(), config, replica_id, store, committer, Channels(), lambda name: None,  # type: ignore[arg-type]
                      observe_commit=service.observe_commit)
    service.replica = replica
    return replica, committer


@pytest_twisted.ensureDeferred
async def test_a_follower_shows_its_epoch_role_and_indexes(tmp_path):
    path, ports = config_file(tmp_path)
    service, server = tree(order, path, "--id", "2")
    assert server.args[0] == ports["order-2"]
    families = await scrape(server)
    assert "bazaar_replica_epoch" not in families, "not started"
    replica, _ = replica_for(service, 2)
    replica.ready = True
    replica.reactor.advance(replica.follower_lease.duration)  # done starting
    families = await scrape(server)
    assert value(families, "bazaar_replica_epoch") == 0
    assert {s.labels["role"]: s.value for s in families["bazaar_replica_role"].samples} == {
        "learner": 0, "follower": 1, "candidate": 0, "leader": 0}
    assert value(families, "bazaar_replica_last_index") == -1
    assert value(families, "bazaar_replica_committed_index") == -1
    assert "bazaar_replica_follower_match_index" not in families, "leader only"
    assert families["bazaar_replica_commit_latency_seconds"].type == "histogram"
    replica.log.stop()


@pytest_twisted.ensureDeferred
async def test_the_leader_shows_its_followers_match_points_lag_and_trades(tmp_path):
    path, _ = config_file(tmp_path)
    service, server = tree(order, path, "--id", "1")
    replica, committer = replica_for(service)
    replica.ready = True
    replica.reactor.advance(replica.follower_lease.duration)  # done starting
    assert replica.core.promise(1)
    leadership = replica.begin_leading(replica.peers)
    committer.flush()
    two = str(replica.config.replicas[2])
    leadership.follower_answered(two, order_pb2.PROPAGATE_STATUS_OK, 0, 1, replica.now(), False)
    assert leadership.serving, "its leader entry is on replica 2 too"
    placed = [Deferred.fromCoroutine(replica.place_order(o.name, o.quantity, o.type, o.idempotency_key, 1.0))
              for o in orders("tesla", "ford", "nope")]
    replica.reactor.advance(0.004)
    committer.flush()
    leadership.follower_answered(two, order_pb2.PROPAGATE_STATUS_OK, 2, 1, replica.now(), False)
    assert [fired(d) for d in placed] == [(order_pb2.REQUEST_STATUS_OK, 0), (order_pb2.REQUEST_STATUS_OK, 1),
                                          (order_pb2.REQUEST_STATUS_STOCK_NOT_FOUND, -1)]
    families = await scrape(server)
    assert {s.labels["role"] for s in families["bazaar_replica_role"].samples if s.value == 1} == {"leader"}
    assert value(families, "bazaar_replica_epoch") == 1
    assert value(families, "bazaar_replica_last_index") == 2
    assert value(families, "bazaar_replica_committed_index") == 2
    assert value(families, "bazaar_replica_follower_match_index", follower="2") == 2
    assert value(families, "bazaar_replica_follower_lag_entries", follower="2") == 0
    assert {s.labels["follower"] for s in families["bazaar_replica_follower_match_index"].samples} == {"2"}, \
        "replica 3 has not answered: its match point is not known"
    assert value(families, "bazaar_replica_trades_total", outcome="ok") == 2
    assert value(families, "bazaar_replica_trades_total", outcome="stock_not_found") == 1
    assert value(families, "bazaar_replica_trades_total", outcome="in_doubt") == 0
    # The two trades committed 4 ms after they arrived (the test's clock); the refusal
    # logged nothing and is not timed.
    assert value(families, "bazaar_replica_commit_latency_seconds_count") == 2
    assert value(families, "bazaar_replica_commit_latency_seconds_bucket", le="0.002") == 0
    assert value(families, "bazaar_replica_commit_latency_seconds_bucket", le="0.005") == 2
    assert "bazaar_catalog_lag_trades" not in families, "the catalog has not answered yet"
    leadership.catalog_feed.answered(catalog_pb2.TradeBatchResponse(applied_through=0))
    families = await scrape(server)
    assert value(families, "bazaar_catalog_acknowledged_through") == 0
    assert value(families, "bazaar_catalog_lag_trades") == 1, "trade 1 is committed, the catalog has applied 0"
    replica.log.stop()
    replica.step_down("the test is over")


def test_a_collector_that_fails_is_left_out_and_the_rest_is_served(tmp_path):
    from prometheus_client import generate_latest

    from bazaar.metrics.registry import ObjectCollector, process_registry

    class Broken(ObjectCollector):
        def families(self):
            raise RuntimeError("a bug in a metric")
            yield

    registry = process_registry()
    registry.register(Broken())
    text = generate_latest(registry).decode()
    assert "process_cpu_seconds_total" in text


def test_each_process_has_its_own_registry(tmp_path):
    path, _ = config_file(tmp_path)
    first, second = tree(frontend, path)[1], tree(frontend, path)[1]
    assert first.args[1].resource._metrics is not second.args[1].resource._metrics


def test_the_cache_counts_invalidations_and_the_entries_they_dropped():
    cache: LRUCache[int] = LRUCache(2)
    cache.complete_fill("tesla", cache.begin_fill("tesla"), 1)
    cache.invalidate("tesla")
    cache.invalidate("tesla")  # no longer cached
    cache.invalidate("never")
    assert (cache.invalidations, cache.invalidated) == (3, 1)


class MetricsPort:
    """A MetricsSite on a clock, reached through tests/unit/http_wire.py's Wire (no sockets)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.site = MetricsSite(CollectorRegistry(), reactor=self.clock)

    def connect(self, peer: str = "192.0.2.1", port: int = 40000) -> Wire:
        return Wire(self, peer, port)  # type: ignore[arg-type]


NOT_METRICS = b"GET /other HTTP/1.1\r\nHost: m\r\n\r\n"  # answered without the thread pool


def test_the_metrics_listener_refuses_connections_past_its_small_caps():
    port = MetricsPort()
    held = [port.connect(f"192.0.2.{i // METRICS_PER_PEER}", 40000 + i) for i in range(METRICS_CONNECTIONS)]
    assert not any(w.closing for w in held)
    extra = port.connect("198.51.100.1")
    assert "the metrics endpoint is serving as many connections as it can" in extra.answer().assert_error(503)
    held[0].lose()
    again = port.connect("198.51.100.1")
    again.send(NOT_METRICS)
    assert again.answer().status == 404, "a closed connection makes room"
    assert port.site.descriptors == METRICS_DESCRIPTORS


def test_one_address_cannot_take_every_metrics_connection():
    port = MetricsPort()
    mine = [port.connect("192.0.2.1", 40000 + i) for i in range(METRICS_PER_PEER)]
    assert "your address" in port.connect("192.0.2.1", 41000).answer().assert_error(503)
    scraper = port.connect("192.0.2.2")
    scraper.send(NOT_METRICS)
    assert scraper.answer().status == 404 and not any(w.closing for w in mine)


def test_a_metrics_connection_that_never_finishes_a_request_is_cut_off():
    port = MetricsPort()
    silent, trickling = port.connect("192.0.2.1"), port.connect("192.0.2.2")
    for byte in b"GET /":  # a byte a second, each restarting the idle timer
        trickling.send(bytes([byte]))
        port.clock.advance(1)
        assert trickling.closing == (port.clock.seconds() >= METRICS_READ_TIMEOUT)
    assert silent.closing
    for wire in (silent, trickling):
        assert "did not arrive within 5 seconds" in wire.answer().assert_error(408)
        wire.lose()
    assert port.site.open == 0


def test_an_idle_kept_alive_metrics_connection_is_closed():
    port = MetricsPort()
    wire = port.connect()
    wire.send(NOT_METRICS)
    assert wire.answer().status == 404 and not wire.closing
    port.clock.advance(METRICS_IDLE_TIMEOUT - 0.5)
    assert not wire.closing, "no read deadline runs between requests"
    port.clock.advance(1)
    assert wire.closing
