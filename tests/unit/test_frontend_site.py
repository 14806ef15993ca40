"""The public port's connection caps (docs/api.md): beyond them a 503 in JSON, and the clients
already connected are still served."""

from __future__ import annotations

from bazaar.frontend.site import LINGER, MAX_LINGERING, ApiSite, Refusal
from tests.unit.http_wire import Port

LOOKUP = b"GET /stocks/tesla HTTP/1.1\r\nHost: fe\r\n\r\n"


def test_the_connection_past_the_cap_gets_503_while_the_first_n_are_served():
    port = Port(max_connections=3)
    first = [port.connect(f"192.0.2.{i}") for i in range(3)]
    extra = port.connect("192.0.2.9")
    assert isinstance(extra.protocol, Refusal)
    answer = extra.answer()
    assert "retry later" in answer.assert_error(503)
    assert answer.headers["connection"] == "close" and answer.headers["retry-after"] == "1"
    for wire in first:
        wire.send(LOOKUP)
        wire.send(LOOKUP)  # and again, kept alive
        assert [a.status for a in wire.answers()] == [200, 200] and not wire.closing
    assert port.world.catalog.lookups.count("tesla") >= 1


def test_a_closed_connection_makes_room_for_a_new_one():
    port = Port(max_connections=2)
    a, b = port.connect("192.0.2.1"), port.connect("192.0.2.2")
    assert isinstance(port.connect("192.0.2.3").protocol, Refusal)
    a.lose()
    c = port.connect("192.0.2.3")
    c.send(LOOKUP)
    assert c.answer().status == 200
    assert port.site.open == 2 and b.protocol is not None


def test_a_connection_the_channel_closes_itself_frees_its_place():
    port = Port(max_connections=1, read_timeout=1.0)
    slow = port.connect()
    port.world.clock.advance(1.0)  # cut off at its read deadline
    assert slow.closing
    slow.lose()
    assert port.site.open == 0 and not port.site.open_by_peer
    assert not isinstance(port.connect().protocol, Refusal)


def test_one_address_cannot_take_every_connection():
    port = Port(max_connections=10, max_connections_per_peer=2)
    mine = [port.connect("192.0.2.1", 40000 + i) for i in range(2)]
    refused = port.connect("192.0.2.1", 40002)
    assert "your address" in refused.answer().assert_error(503)
    other = port.connect("192.0.2.2")
    other.send(LOOKUP)
    assert other.answer().status == 200
    mine[0].lose()
    again = port.connect("192.0.2.1", 40003)
    again.send(LOOKUP)
    assert again.answer().status == 200


def test_a_refused_connection_is_closed_once_its_request_head_is_in():
    port = Port(max_connections=1)
    port.connect("192.0.2.1")
    refused = port.connect("192.0.2.2")
    assert not refused.closing  # its request has not arrived: closing now could reset it
    refused.send(b"GET /stocks/tesla HTTP/1.1\r\nHost: f")
    assert not refused.closing
    refused.send(b"e\r\n\r\n")
    assert refused.closing and not refused.transport.disconnected
    refused.lose()
    assert port.site.lingering == 0
    assert port.world.catalog.lookups == []  # a refused request is not served


def test_a_refused_connection_that_sends_nothing_is_aborted_after_the_linger():
    port = Port(max_connections=1)
    port.connect("192.0.2.1")
    refused = port.connect("192.0.2.2")
    port.world.clock.advance(LINGER)
    assert refused.transport.disconnected
    refused.lose()
    assert port.site.lingering == 0


def test_past_the_lingering_bound_a_refusal_is_closed_at_once():
    port = Port(max_connections=1)
    port.connect("192.0.2.1")
    lingering = [port.connect(f"198.51.100.{i % 250}", 40000 + i) for i in range(MAX_LINGERING)]
    assert not any(w.closing for w in lingering)
    burst = port.connect("203.0.113.1")
    burst.answer().assert_error(503)
    assert burst.closing


def test_the_site_is_an_api_site_with_the_configured_idle_timeout():
    port = Port(idle_timeout=7.0, read_timeout=3.0)
    assert isinstance(port.site, ApiSite) and port.site.timeOut == 7.0
    assert port.connect().protocol.read_timeout == 3.0
