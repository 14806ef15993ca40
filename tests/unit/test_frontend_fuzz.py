"""Random requests at the public port, through the real channel and app on the fakes: whatever a
client sends, the answer is never a 5xx,
every error is the API's JSON error, and a request that is not answered 200 trades nothing."""

from __future__ import annotations

import http.client
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bazaar.frontend.channel import MAX_BODY
from tests.unit.http_wire import Answer, Port, parse_answers

READ_TIMEOUT = 5.0
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
URL_CHARS = string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@/?"

methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT"]),
    st.text(TOKEN, min_size=1, max_size=8),
)
segments = st.one_of(
    st.sampled_from(["stocks", "orders", "cache", "leader", "tesla", "ford", "0", "1", "-1", "99999999999999999999",
                     "%FF", "%00", "%2F", "..", "", "x" * 150, "tesla?since=3", "cache?since=x"]),
    st.text(URL_CHARS, max_size=12),
)
paths = st.one_of(
    st.lists(segments, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    st.sampled_from(["*", "http://fe/stocks/tesla", "/stocks/tesla#frag", "/orders?x=1"]),
)
header_names = st.one_of(
    st.sampled_from(["Content-Type", "Idempotency-Key", "Expect", "Connection", "Host", "Accept", "Cookie",
                     "Content-Encoding", "X-Forwarded-For", "Upgrade"]),
    st.text(TOKEN, min_size=1, max_size=12),
)
header_values = st.one_of(
    st.sampled_from(["application/json", "close", "keep-alive", "100-continue", "websocket", "", "k-1",
                     "a" * 200, "é"]),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1")),
)
orders = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["tesla", "ford", "gamestop", "nope", ""]), st.text(max_size=5),
                          st.integers(), st.none()),
        "quantity": st.one_of(st.integers(-5, 2000), st.floats(allow_nan=False), st.booleans(), st.text(max_size=3)),
        "type": st.one_of(st.sampled_from(["buy", "sell", "short"]), st.integers(), st.none()),
    },
)
valid_orders = st.fixed_dictionaries({
    "name": st.sampled_from(["tesla", "ford", "gamestop"]),
    "quantity": st.integers(1, 10),
    "type": st.sampled_from(["buy", "sell"]),
})
bodies = st.one_of(
    orders.map(lambda o: json.dumps(o).encode()),
    st.binary(max_size=300),
    st.just(b"{" * 2_000),  # nested past the JSON parser's recursion limit
    st.just(b" " * (MAX_BODY + 1)),
)
framings = st.sampled_from(["length", "none", "chunked", "short length", "long length", "bad length"])


def request_bytes(method: str, path: str, version: str, headers: list[tuple[str, str]], body: bytes,
                  framing: str) -> bytes:
    lines = [f"{method} {path} {version}".encode("latin-1")]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    if framing == "length":
        lines.append(b"Content-Length: %d" % len(body))
    elif framing == "short length":  # the body runs on into what would be the next request
        lines.append(b"Content-Length: %d" % (len(body) // 2))
    elif framing == "long length":  # the client never sends the rest
        lines.append(b"Content-Length: %d" % (len(body) + 10))
    elif framing == "bad length":
        lines.append(b"Content-Length: -1")
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    else:
        body = b""
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


requests = st.builds(
    request_bytes, methods, paths, st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/x"]),
    st.lists(st.tuples(header_names, header_values), max_size=6), bodies, framings,
)
# Requests the routes take, with random bodies and headers: these reach the app's own checks.
ROUTES = [("POST", "/orders")] * 4 + [("GET", path) for path in (
    "/stocks/tesla", "/stocks/nope", "/orders/0", "/orders/1", "/cache", "/cache/tesla", "/leader")]
api_requests = st.tuples(
    st.sampled_from(ROUTES),
    st.lists(st.tuples(st.sampled_from(["Idempotency-Key", "Content-Type", "Connection"]), header_values), max_size=2),
    st.one_of(valid_orders, valid_orders, orders).map(lambda o: json.dumps(o).encode()),
    st.sampled_from(["length", "chunked"]),
).map(lambda r: request_bytes(r[0][0], r[0][1], "HTTP/1.1", r[1], r[2], r[3]))
raw_noise = st.binary(min_size=1, max_size=400).map(lambda b: b + b"\r\n\r\n")


def read(raw: bytes, method: bytes) -> list[Answer]:
    if method == b"HEAD":
        try:
            return parse_answers(raw, ["HEAD"])
        except http.client.HTTPException:
            pass  # a refusal written below the app carries its JSON body even to a HEAD
    return parse_answers(raw)


def check(answer: Answer, method: bytes) -> None:
    assert answer.status < 500, answer
    if method == b"HEAD" and not answer.body:
        return
    if answer.status >= 400:
        answer.assert_error(answer.status)
    else:
        assert answer.headers["content-type"] == "application/json", answer
        assert set(answer.json) == {"data"}, answer


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(requests, api_requests, raw_noise), st.integers(1, 3))
def test_no_request_gets_a_5xx_a_non_json_error_or_trades_when_refused(raw, pieces):
    port = Port(read_timeout=READ_TIMEOUT)
    book = port.world.book
    before = ([o for o in book.orders], {name: list(stock) for name, stock in book.stocks.items()})
    wire = port.connect()
    step = max(1, len(raw) // pieces)
    for start in range(0, len(raw), step):  # as the network may cut it
        wire.send(raw[start:start + step])
    port.world.run(0.2)
    if not wire.closing:
        port.world.clock.advance(READ_TIMEOUT)  # a request left unfinished is answered 408
    answers = read(wire.transport.value(), raw.split(b" ", 1)[0])
    assert answers or wire.closing, "neither an answer nor a close"
    for answer in answers:
        check(answer, raw.split(b" ", 1)[0])
    traded = sum(1 for a in answers if a.status == 200 and a.body and "transaction_number" in a.json["data"])
    assert len(book.orders) == len(before[0]) + traded
    if not traded:
        assert {name: list(stock) for name, stock in book.stocks.items()} == before[1]
