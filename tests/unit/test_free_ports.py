"""free_ports: the ports the harnesses (chaos, bench, integration tests) give the processes they start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bazaar.chaos import processes
from bazaar.chaos.processes import LOOPBACK, LOWEST_PORT, ephemeral_ports, free_ports


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def test_the_ports_are_distinct_free_and_outside_the_ephemeral_range() -> None:
    ephemeral = ephemeral_ports()
    if ephemeral is None or ephemeral.start <= LOWEST_PORT + 100:
        pytest.skip("no room below this machine's ephemeral port range")
    ports = free_ports(12)
    assert len(set(ports)) == 12 and all(bindable(p) for p in ports)
    assert all(LOWEST_PORT <= p < ephemeral.start for p in ports), "an outgoing connection could take them"


def test_a_port_in_use_is_never_offered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        port = taken.getsockname()[1]
        if port <= LOWEST_PORT:
            pytest.skip("the kernel gave a port below the range free_ports looks in")
        # Only the taken port below the "ephemeral" range: free_ports must go past it, to port 0.
        (tmp_path / "range").write_text(f"{port + 1}\t65000\n")
        monkeypatch.setattr(processes, "LOWEST_PORT", port)
        monkeypatch.setattr(processes, "LOCAL_PORT_RANGE", tmp_path / "range")
        ports = free_ports(3)
        assert port not in ports and len(set(ports)) == 3 and all(bindable(p) for p in ports)


def test_without_a_readable_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(processes, "LOCAL_PORT_RANGE", tmp_path / "missing")
    assert ephemeral_ports() is None
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(bindable(p) for p in ports)


def test_a_port_handed_out_is_never_handed_out_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Two clusters made before either starts must not share a port: nothing is bound yet.
    monkeypatch.setattr(processes, "_given", set())
    first = free_ports(3)
    # Only those three ports below the "ephemeral" range now: the next call must go past them.
    low = min(first)
    (tmp_path / "range").write_text(f"{low + 1}\t65000\n")
    monkeypatch.setattr(processes, "LOWEST_PORT", low)
    monkeypatch.setattr(processes, "LOCAL_PORT_RANGE", tmp_path / "range")
    second = free_ports(3)
    assert not set(first) & set(second) and len(set(second)) == 3 and all(bindable(p) for p in second)
