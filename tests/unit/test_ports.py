"""The tests' refusing ports: refused, and never a metrics offset apart."""

from __future__ import annotations

import socket

import pytest

from bazaar.config import METRICS_PORT_OFFSET
from tests.unit.ports import refusing_ports


def test_the_ports_refuse_connections_and_are_never_a_metrics_offset_apart():
    with refusing_ports(30) as ports:
        assert len(set(ports)) == 30
        assert all(abs(a - b) != METRICS_PORT_OFFSET for a in ports for b in ports)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ports[0]), timeout=1)
