"""Loopback ports that refuse connections while a test holds them: bound, never listening, so
nothing else (another test, a cluster on the default ports) can answer there."""

from __future__ import annotations

import socket
from contextlib import ExitStack, contextmanager
from typing import Iterator

from bazaar.config import METRICS_PORT_OFFSET


@contextmanager
def refusing_ports(count: int) -> Iterator[list[int]]:
    """`count` such ports, no two METRICS_PORT_OFFSET apart: a configuration that takes a
    process's metrics port from its address (port + offset) must not find it taken by
    another's address, as the kernel's next free ports can make it."""
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            s = stack.enter_context(socket.socket())  # held, if refused too: not handed out again
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if all(abs(port - other) != METRICS_PORT_OFFSET for other in ports):
                ports.append(port)
        yield ports
