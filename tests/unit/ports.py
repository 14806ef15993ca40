"""Loopback ports that refuse connections while a test holds them: bound, never listening, so
nothing else (another test, a cluster on the default ports) can answer there."""

from __future__ import annotations

import socket
from contextlib import ExitStack, contextmanager
from typing import Iterator


@contextmanager
def refusing_ports(count: int) -> Iterator[list[int]]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        yield [s.getsockname()[1] for s in sockets]
