"""The public port's HTTP channel, byte by byte: body limit, JSON refusals of what Twisted cannot
parse, the read deadline and the idle timeout (docs/api.md), on a fake clock and no sockets."""

from __future__ import annotations

import json
from io import BytesIO

import pytest

from bazaar.frontend.channel import MAX_BODY, ApiChannel
from tests.unit.http_wire import Port

ORDER = json.dumps({"name": "tesla", "quantity": 1, "type": "buy"}).encode()


def post(body: bytes, *headers: bytes) -> bytes:
    head = [b"POST /orders HTTP/1.1", b"Host: fe", *headers]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


@pytest.fixture
def port() -> Port:
    return Port()


def test_a_small_order_is_served(port):
    wire = port.connect()
    wire.send(post(ORDER, b"Content-Length: %d" % len(ORDER)))
    assert wire.answer().status == 200
    assert len(port.world.book.orders) == 1 and not wire.closing


# -- the body limit ----------------------------------------------------------------------------


def test_a_content_length_past_the_limit_is_413_before_any_body_is_read(port):
    wire = port.connect()
    wire.send(post(b"", b"Content-Length: %d" % (MAX_BODY + 1), b"Expect: 100-continue"))
    request = wire.protocol.requests[-1]
    wire.send(ORDER + b" " * 100_000)
    message = wire.answer().assert_error(413)
    assert str(MAX_BODY) in message
    assert b"100 Continue" not in wire.transport.value()  # the client was not invited to send it
    assert wire.answer().headers["connection"] == "close" and wire.closing
    assert request.content is None  # no room was made for the body, in memory or on disk
    assert port.world.book.orders == []


def test_a_body_of_exactly_the_limit_is_read(port):
    wire = port.connect()
    body = ORDER + b" " * (MAX_BODY - len(ORDER))
    wire.send(post(body, b"Content-Length: %d" % MAX_BODY))
    assert wire.answer().status == 200


def test_a_chunked_body_is_read_in_memory(port):
    wire = port.connect()
    wire.send(post(b"", b"Transfer-Encoding: chunked"))
    # Twisted would spool a chunked body to a temporary file.
    assert isinstance(wire.protocol.requests[-1].content, BytesIO)
    wire.send(chunked(ORDER[:10], ORDER[10:]))
    assert wire.answer().status == 200


def test_a_chunked_body_past_the_limit_is_413_and_read_no_further(port):
    wire = port.connect()
    wire.send(post(b"", b"Transfer-Encoding: chunked"))
    request = wire.protocol.requests[-1]
    piece = b" " * 16_000
    for _ in range(4):  # 64,000 bytes: still within the limit
        wire.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    assert wire.answers() == [] and not wire.closing
    wire.send(b"%x\r\n%s\r\n" % (len(piece), piece))  # past it
    wire.send(chunked(piece))  # the end of the body: it must not become a request
    wire.answer().assert_error(413)
    assert wire.closing
    assert isinstance(request.content, BytesIO) and request.content.tell() <= MAX_BODY
    assert port.world.book.orders == []


# -- what Twisted cannot parse -----------------------------------------------------------------

TOO_MANY_HEADERS = b"".join(b"X-H%d: v\r\n" % i for i in range(ApiChannel.maxHeaders + 1))
BAD_REQUESTS = [
    ("a request line that is not HTTP", b"GARBAGE\r\n\r\n", 400, "request line"),
    ("a request line with a space too many", b"GET / x HTTP/1.1\r\n\r\n", 400, "request line"),
    ("a method that is not a token", b"G(T / HTTP/1.1\r\n\r\n", 400, "request line"),
    ("HTTP/2.0 on a request line", b"GET / HTTP/2.0\r\n\r\n", 400, "HTTP/1.1"),
    ("HTTP/0.9", b"GET / HTTP/0.9\r\n\r\n", 400, "HTTP/1.1"),
    ("a header without a colon", b"GET / HTTP/1.1\r\nHost fe\r\n\r\n", 400, "header"),
    ("a header name with a space", b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "header"),
    ("a NUL in a header value", b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400, "header"),
    ("too many headers", b"GET / HTTP/1.1\r\n" + TOO_MANY_HEADERS + b"\r\n", 431, "head"),
    ("a head too large", b"GET / HTTP/1.1\r\n" + b"X-A: %s\r\n" % (b"v" * 8000) * 3 + b"\r\n", 431, "head"),
    ("a header line too long", b"GET / HTTP/1.1\r\nX-A: " + b"v" * 9000 + b"\r\n\r\n", 431, "head"),
    ("a request line too long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414, "longer than 8192"),
    ("a request line too long, unfinished", b"GET /" + b"a" * 9000, 414, "longer than 8192"),
    ("a Content-Length that is not a number", post(b"", b"Content-Length: 12abc"), 400, "Content-Length"),
    ("two Content-Lengths", post(b"{}", b"Content-Length: 2", b"Content-Length: 2"), 400, "Content-Length"),
    ("Content-Length and chunked", post(b"{}", b"Content-Length: 2", b"Transfer-Encoding: chunked"), 400, "Transfer-Encoding"),
    ("an unknown Transfer-Encoding", post(b"{}", b"Transfer-Encoding: gzip"), 400, "Transfer-Encoding"),
    ("a chunk size that is not hex", post(b"zz\r\n{}\r\n0\r\n\r\n", b"Transfer-Encoding: chunked"), 400, "chunked"),
    ("a chunk without its CRLF", post(b"2\r\n{}XX0\r\n\r\n", b"Transfer-Encoding: chunked"), 400, "chunked"),
]


@pytest.mark.parametrize("label, raw, status, says", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_what_twisted_cannot_parse_is_a_json_error_and_the_connection_closes(port, label, raw, status, says):
    wire = port.connect()
    wire.send(raw)
    answer = wire.answer()
    assert says in answer.assert_error(status)
    assert answer.headers["connection"] == "close" and wire.closing
    assert int(answer.headers["content-length"]) == len(answer.body)
    wire.send(b"GET /stocks/tesla HTTP/1.1\r\n\r\n")  # nothing more is read
    assert len(wire.answers()) == 1
    assert port.world.book.orders == []


def test_a_bad_request_after_a_good_one_on_the_same_connection_is_refused_alone(port):
    wire = port.connect()
    wire.send(b"GET /stocks/tesla HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n")
    first, second = wire.answers()
    assert first.status == 200
    second.assert_error(400)
    assert wire.closing


# -- the read deadline and the idle timeout ----------------------------------------------------


def test_a_trickling_request_head_is_cut_off_at_the_read_deadline():
    port = Port(read_timeout=10.0, idle_timeout=5.0)
    wire = port.connect()
    wire.send(b"GET /stocks/tesla HTTP/1.1\r\n")
    for i in range(9):  # a header line a second: each byte would restart an idle timer
        port.world.clock.advance(1.0)
        wire.send(b"X-Slow-%d: 1\r\n" % i)
    assert not wire.closing and wire.answers() == []
    port.world.clock.advance(1.0)
    message = wire.answer().assert_error(408)
    assert "10 seconds" in message and wire.closing
    wire.lose()
    assert not port.world.clock.getDelayedCalls()  # no timer outlives the connection


def test_a_connection_that_sends_nothing_is_cut_off_at_the_read_deadline():
    port = Port(read_timeout=2.0, idle_timeout=60.0)
    wire = port.connect()
    port.world.clock.advance(1.9)
    assert not wire.closing
    port.world.clock.advance(0.2)
    wire.answer().assert_error(408)
    assert wire.closing


def test_a_slow_body_is_cut_off_at_the_read_deadline_too():
    port = Port(read_timeout=3.0)
    wire = port.connect()
    wire.send(post(b"", b"Content-Length: %d" % len(ORDER)))
    for byte in ORDER[:3]:
        port.world.clock.advance(0.9)
        wire.send(bytes([byte]))
    port.world.clock.advance(0.5)
    wire.answer().assert_error(408)
    assert port.world.book.orders == []


def test_the_deadline_restarts_with_each_request_on_a_kept_alive_connection():
    port = Port(read_timeout=2.0, idle_timeout=60.0)
    wire = port.connect()
    for _ in range(3):  # each request well within its deadline, 3 s apart: never cut off
        wire.send(b"GET /stocks/tesla HTTP/1.1\r\n")
        port.world.clock.advance(1.5)
        wire.send(b"\r\n")
        port.world.clock.advance(1.5)
    assert [a.status for a in wire.answers()] == [200, 200, 200] and not wire.closing
    wire.send(b"GET /stocks/tesla HTTP/1.1\r\n")  # the next one's deadline runs from its first byte
    port.world.clock.advance(2.0)
    assert wire.answers()[-1].status == 408 and wire.closing


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout():
    port = Port(read_timeout=1.0, idle_timeout=5.0)
    wire = port.connect()
    wire.send(b"GET /stocks/tesla HTTP/1.1\r\n\r\n")
    assert wire.answer().status == 200
    port.world.clock.advance(4.9)
    assert not wire.closing  # no read deadline runs between requests
    port.world.clock.advance(0.2)
    assert wire.closing
    assert len(wire.answers()) == 1  # closed without a word: there was no request to answer


# -- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [b"//stocks/tesla", b"/stocks//tesla", b"///stocks/tesla", b"//orders",
                                  b"/stocks/tesla/", b"/orders//0", b"//cache"])
def test_a_path_with_an_empty_segment_is_no_resource(port, path):
    wire = port.connect()
    wire.send(b"GET " + path + b" HTTP/1.1\r\n\r\n")
    assert wire.answer().assert_error(404) == "no such resource"
    assert port.world.catalog.lookups == []


def test_the_plain_path_is_the_stock(port):
    wire = port.connect()
    wire.send(b"GET /stocks/tesla HTTP/1.1\r\n\r\n")
    assert wire.answer().json["data"]["name"] == "tesla"


@pytest.mark.parametrize("method", [b"OPTIONS", b"GET", b"POST"])
def test_the_asterisk_target_is_no_resource_either(port, method):
    wire = port.connect()
    wire.send(method + b" * HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    assert wire.answer().assert_error(404) == "no such resource"
    assert not wire.closing
