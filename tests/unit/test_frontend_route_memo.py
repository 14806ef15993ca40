"""The front end finds a route once per (method, path) it keeps: a hot path (a cached stock's)
is not matched again, the same answers come back, and what is kept stays bounded."""

from __future__ import annotations

from typing import Any

import bazaar.frontend.app as app_module
from tests.unit.http_wire import Port


def _get(wire: Any, path: str) -> None:
    wire.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def test_a_path_seen_before_is_answered_without_matching_it_again(monkeypatch):
    port = Port()
    binds: list[str] = []
    url_map = port.world.front_end.app.url_map
    real_bind = url_map.bind

    def counting_bind(*args: Any, **kwargs: Any) -> Any:
        binds.append(kwargs["path_info"])
        return real_bind(*args, **kwargs)

    monkeypatch.setattr(url_map, "bind", counting_bind)
    wire = port.connect()
    for path in ["/stocks/tesla", "/stocks/tesla", "/stocks/ford", "/stocks/tesla", "/nothing", "/nothing"]:
        _get(wire, path)
    answers = wire.answers()
    assert [a.status for a in answers] == [200, 200, 200, 200, 404, 404]
    assert answers[0].body == answers[1].body == answers[3].body
    assert answers[0].headers["content-length"] == str(len(answers[0].body))
    assert binds == ["/stocks/tesla", "/stocks/ford", "/nothing", "/nothing"], "a 404 is never kept"


def test_the_routes_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(app_module, "ROUTES_KEPT", 3)
    port = Port()
    wire = port.connect()
    for n in range(10):
        _get(wire, f"/orders/{n}")
    assert all(a.status in (200, 404) for a in wire.answers())
    resource = port.site.resource
    assert 0 < len(resource._routes) <= 3


def test_a_long_path_is_answered_but_its_route_not_kept():
    port = Port()
    wire = port.connect()
    _get(wire, "/stocks/" + "x" * 2000)
    assert [a.status for a in wire.answers()] == [404]  # no stock has so long a name
    assert port.site.resource._routes == {}
