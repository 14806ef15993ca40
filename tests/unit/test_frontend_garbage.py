"""An answered request leaves nothing for the garbage collector: no reference cycle keeps the
request (and its headers, body and adapters) alive after its answer."""

from __future__ import annotations

import gc
import json

import pytest
from twisted.internet.address import IPv4Address

from tests.unit.http_wire import Port, TcpLikeTransport

BODY = json.dumps({"name": "tesla", "quantity": 1, "type": "buy"}).encode()
REQUESTS = {
    "cached lookup": b"GET /stocks/tesla HTTP/1.1\r\nHost: x\r\n\r\n",
    "trade": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
    "order lookup": b"GET /orders/0 HTTP/1.1\r\nHost: x\r\n\r\n",
    "no such route": b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad body": b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{]",
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_an_answered_request_is_freed_without_the_garbage_collector(name: str) -> None:
    port = Port(order_cache_size=100)
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    transport = TcpLikeTransport(peerAddress=address)
    protocol = port.site.buildProtocol(address)
    protocol.makeConnection(transport)
    for request in REQUESTS.values():  # a trade to look up, a stock cached
        protocol.dataReceived(request)
        port.world.clock.advance(0.01)
    assert transport.value().count(b"HTTP/1.1 ") == len(REQUESTS)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            protocol.dataReceived(REQUESTS[name])
            port.world.clock.advance(0.01)
        gc.collect()
        kept = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert transport.value().count(b"HTTP/1.1 ") == len(REQUESTS) + 20
    assert not kept & {"ApiRequest", "Headers", "KleinRequest", "MapAdapter"}, kept
