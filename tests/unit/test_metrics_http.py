"""The front end's HTTP metrics, counted where the site finishes each request: raw requests
into the real ApiSite and ApiChannel (tests/unit/http_wire.py), and what /metrics would say."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry
from werkzeug.routing import Map, Rule

from bazaar.metrics.frontend import Routes, register_frontend
from tests.unit.http_wire import Port


def port_with_metrics(**limits: object) -> tuple[Port, CollectorRegistry]:
    port = Port(**limits)
    registry = CollectorRegistry()
    register_frontend(registry, port.world.front_end, port.site)
    return port, registry


def requests(registry: CollectorRegistry, route: str, method: str, status: str) -> float:
    return registry.get_sample_value("bazaar_http_requests_total",
                                     {"route": route, "method": method, "status": status}) or 0.0


def timed(registry: CollectorRegistry, route: str, method: str) -> float:
    return registry.get_sample_value("bazaar_http_request_duration_seconds_count",
                                     {"route": route, "method": method}) or 0.0


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: fe\r\n\r\n".encode()


def post_order(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /orders HTTP/1.1\r\nHost: fe\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)) + data


def test_requests_are_counted_by_route_template_method_and_status():
    port, registry = port_with_metrics()
    wire = port.connect()
    for request in (get("/stocks/tesla"), get("/stocks/tesla"), get("/stocks/rivian"), get("/nowhere/at/all"),
                    get("/stocks/tesla", "DELETE"), get("/leader"), get("/stocks/tesla", "BREW")):
        wire.send(request)
    assert [a.status for a in wire.answers(["GET"] * 7)] == [200, 200, 404, 404, 405, 200, 405]
    assert requests(registry, "/stocks/{name}", "GET", "200") == 2
    assert requests(registry, "/stocks/{name}", "GET", "404") == 1, "a name nobody has is still the route"
    assert requests(registry, "other", "GET", "404") == 1, "never the raw path"
    assert requests(registry, "/stocks/{name}", "DELETE", "405") == 1
    assert requests(registry, "/leader", "GET", "200") == 1
    assert requests(registry, "/stocks/{name}", "other", "405") == 1, "a made-up method is no label"
    assert timed(registry, "/stocks/{name}", "GET") == 3
    assert registry.get_sample_value("bazaar_http_request_duration_seconds_bucket",
                                     {"route": "/stocks/{name}", "method": "GET", "le": "+Inf"}) == 3
    labels = {s.labels["route"] for family in registry.collect() if family.name == "bazaar_http_requests"
              for s in family.samples}
    assert labels == {"/stocks/{name}", "other", "/leader"}


def test_trades_cache_and_leader_selections_are_counted_from_the_objects_own_counts():
    port, registry = port_with_metrics()
    wire = port.connect()
    wire.send(get("/stocks/ford"))  # a miss, then cached
    wire.send(get("/stocks/ford"))  # a hit
    wire.send(post_order({"name": "ford", "quantity": 1, "type": "buy"}))  # executed: drops ford
    wire.send(post_order({"name": "ford", "quantity": 99, "type": "buy"}))  # refused
    statuses = [a.status for a in wire.answers(["GET", "GET", "POST", "POST"])]
    assert statuses == [200, 200, 200, 400]
    sample = registry.get_sample_value
    assert sample("bazaar_http_requests_total", {"route": "/orders", "method": "POST", "status": "200"}) == 1
    assert sample("bazaar_frontend_trades_total", {"outcome": "executed"}) == 1
    assert sample("bazaar_frontend_trades_total", {"outcome": "not_enough_stock"}) == 1
    assert sample("bazaar_frontend_trades_total", {"outcome": "unknown"}) == 0
    assert (sample("bazaar_cache_hits_total"), sample("bazaar_cache_misses_total")) == (1, 1)
    assert sample("bazaar_cache_invalidations_total") == 1 and sample("bazaar_cache_invalidated_entries_total") == 1
    assert sample("bazaar_cache_entries") == 0
    assert sample("bazaar_leader_selections_total", {"cause": "start"}) == 1
    assert sample("bazaar_leader_selection_results_total", {"result": "assigned"}) == 1
    assert sample("bazaar_frontend_leader_replica") == 3


def test_a_request_whose_client_left_before_its_answer_is_counted_as_aborted():
    port, registry = port_with_metrics()
    port.world.catalog.hold = True
    wire = port.connect()
    wire.send(get("/stocks/tesla"))
    assert registry.get_sample_value("bazaar_http_connections_open") == 1
    wire.lose()
    port.world.catalog.release()
    assert requests(registry, "/stocks/{name}", "GET", "aborted") == 1
    assert requests(registry, "/stocks/{name}", "GET", "200") == 0
    assert registry.get_sample_value("bazaar_http_connections_open") == 0
    assert registry.get_sample_value("bazaar_http_connections_total") == 1


def test_refusals_are_counted_by_status_and_are_not_requests():
    port, registry = port_with_metrics(max_connections=1)
    bad = port.connect()
    bad.send(b"this is not HTTP\r\n\r\n")
    assert bad.answer().status == 400
    bad.lose()
    held = port.connect()
    assert port.connect("192.0.2.9").answer().status == 503
    assert registry.get_sample_value("bazaar_http_refused_total", {"status": "400"}) == 1
    assert registry.get_sample_value("bazaar_http_refused_total", {"status": "503"}) == 1
    assert not [s for f in registry.collect() if f.name == "bazaar_http_requests" for s in f.samples]
    del held


def test_routes_come_from_the_url_map_so_new_routes_are_labelled_without_a_change():
    routes = Routes(Map([Rule("/stocks/<name>"), Rule("/healthz"), Rule("/orders/<int:number>"),
                         Rule("/stocks/top"), Rule("/")]))
    assert routes.name([b"stocks", b"tesla"]) == "/stocks/{name}"
    assert routes.name([b"stocks", b"top"]) == "/stocks/top", "a static route before a variable one"
    assert routes.name([b"stocks", b""]) == "other", "a variable segment is never empty"
    assert routes.name([b"healthz"]) == "/healthz"
    assert routes.name([b"orders", b"12"]) == "/orders/{number}"
    assert routes.name([b"orders", b"twelve"]) == "other", "not an int"
    assert routes.name([b""]) == "/"
    assert routes.name([b"stocks", b"tesla", b"more"]) == "other"


def test_a_failing_metric_does_not_break_the_answer():
    port, registry = port_with_metrics()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in a metric")

    port.site.observe._calls.add = broken  # type: ignore[union-attr]
    wire = port.connect()
    wire.send(get("/stocks/tesla"))
    wire.send(get("/stocks/tesla"))
    assert [a.status for a in wire.answers()] == [200, 200] and not wire.closing


def test_made_up_methods_share_one_label_set_and_keep_nothing_more_in_memory():
    port, registry = port_with_metrics()
    wire = port.connect()
    observe = port.site.observe

    def made_up(start: int, n: int) -> list[int]:
        for i in range(start, start + n):
            wire.send(get("/stocks/tesla", f"M{i:06d}"))
        return [a.status for a in wire.answers(["GET"] * (start + n))]

    assert made_up(0, 3) == [405] * 3
    kept = (len(observe._calls._children), len(observe._by_path))  # type: ignore[union-attr]
    assert made_up(3, 300) == [405] * 303
    assert requests(registry, "/stocks/{name}", "other", "405") == 303
    # Each made-up method is counted under ("/stocks/{name}", "other", "405"), and neither the
    # children's keys nor the paths kept grow with the methods a client makes up.
    assert (len(observe._calls._children), len(observe._by_path)) == kept  # type: ignore[union-attr]


def test_a_path_too_long_to_be_a_stock_name_is_not_kept():
    port, registry = port_with_metrics()
    wire = port.connect()
    for i in range(20):
        wire.send(get(f"/stocks/{'x' * 2000}{i}"))
    assert [a.status for a in wire.answers(["GET"] * 20)] == [404] * 20
    assert requests(registry, "/stocks/{name}", "GET", "404") == 20
    assert port.site.observe._by_path == {}  # type: ignore[union-attr]
