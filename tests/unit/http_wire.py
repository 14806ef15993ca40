"""The front end's public port without sockets: raw bytes into the real ApiSite and ApiChannel
over a StringTransport, on the World's fakes and clock, and the answers parsed as a client would.
"""

from __future__ import annotations

import http.client
import io
import json
from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from bazaar.config import FrontendConfig
from bazaar.frontend.site import ApiSite
from tests.unit.test_frontend_routes import World


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def assert_error(self, status: int) -> str:
        """That this is the API's JSON error with `status`; its message."""
        assert self.status == status, self
        assert self.headers["content-type"] == "application/json", self
        body = self.json
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert body["error"]["code"] == status
        message = body["error"]["message"]
        assert isinstance(message, str) and message, body
        return message


class _Stream(io.BytesIO):
    def close(self) -> None:
        pass  # HTTPResponse closes its file after each response; the next one follows in it


class _Socket:
    def __init__(self, stream: io.BytesIO) -> None:
        self._stream = stream

    def makefile(self, mode: str) -> io.BytesIO:
        return self._stream


def parse_answers(raw: bytes, methods: list[str] | None = None) -> list[Answer]:
    """Every whole response in `raw`, in order (`methods`: the requests', for HEAD's bodiless one)."""
    stream = _Stream(raw)
    answers = []
    while stream.tell() < len(raw):
        method = methods[len(answers)] if methods and len(answers) < len(methods) else "GET"
        response = http.client.HTTPResponse(_Socket(stream), method=method)  # type: ignore[arg-type]
        response.begin()
        body = response.read()
        answers.append(Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body))
    return answers


def limits(**overrides: Any) -> FrontendConfig:
    return FrontendConfig(**overrides)


class Port:
    """An ApiSite over the World's front end, with the World's clock for every timer."""

    def __init__(self, world: World | None = None, **overrides: Any) -> None:
        self.world = world or World()
        self.site = ApiSite(self.world.front_end.app.resource(), limits(**overrides), reactor=self.world.clock)

    def connect(self, peer: str = "192.0.2.1", port: int = 40000) -> "Wire":
        return Wire(self, peer, port)


class TcpLikeTransport(StringTransport):
    """As a TCP transport behaves once told to close: pausing or resuming it is harmless (it
    just stops reading), where StringTransport raises."""

    def pauseProducing(self) -> None:
        if not self.disconnecting:
            super().pauseProducing()

    def resumeProducing(self) -> None:
        if not self.disconnecting:
            super().resumeProducing()


class Wire:
    """One client connection."""

    def __init__(self, port: Port, peer: str, peer_port: int) -> None:
        self.port = port
        address = IPv4Address("TCP", peer, peer_port)
        self.transport = TcpLikeTransport(peerAddress=address)
        self.protocol = port.site.buildProtocol(address)
        self.protocol.makeConnection(self.transport)
        self.lost = False

    def send(self, data: bytes) -> None:
        if not self.transport.disconnecting:  # a closing TCP transport reads no more
            self.protocol.dataReceived(data)

    def answers(self, methods: list[str] | None = None) -> list[Answer]:
        return parse_answers(self.transport.value(), methods)

    def answer(self, method: str = "GET") -> Answer:
        answers = self.answers([method])
        assert len(answers) == 1, answers
        return answers[0]

    @property
    def closing(self) -> bool:
        return self.transport.disconnecting

    def lose(self) -> None:
        """The connection is gone (as the reactor tells a protocol once it closed)."""
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(ConnectionDone()))
