"""Slow clients for bench/slowloris.py: many connections that each send a request head one byte
at a time and never finish it, reopened as the front end closes them; one thread, non-blocking
sockets, bounded in count and time, loopback only."""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass, field

HEAD = b"GET /stocks/tesla HTTP/1.1\r\nHost: bench\r\n"
MAX_NEW_PER_SECOND = 2000  # reopening is throttled: this is a slow attack, not a connection flood


@dataclass
class SlowStats:
    opened: int = 0
    peak_open: int = 0  # connected and not yet closed, at once
    closes: Counter = field(default_factory=Counter)  # how the front end ended them
    lifetimes: list[float] = field(default_factory=list)  # seconds, of those cut off with 408


@dataclass
class _Conn:
    sock: socket.socket
    opened_at: float
    connected: bool = False
    closed: bool = False
    first_bytes: bytes = b""


def run(host: str, port: int, sources: list[str], count: int, trickle_every: float, seconds: float) -> SlowStats:
    """Keep up to `count` slow connections open against host:port for `seconds`, spread over the
    source addresses `sources` (each a loopback address), each trickling a byte every
    `trickle_every` seconds."""
    for source in sources:
        if not source.startswith("127."):
            raise ValueError(f"slow clients only come from loopback addresses, not {source}")
    stats = SlowStats()
    selector = selectors.DefaultSelector()
    conns: dict[int, _Conn] = {}
    due: deque[tuple[float, _Conn]] = deque()  # one interval for all keeps it in time order
    connected = 0
    end = time.monotonic() + seconds
    next_source = 0
    budget, budget_at = 0.0, time.monotonic()

    def close(fd: int, how: str) -> None:
        nonlocal connected
        conn = conns.pop(fd)
        selector.unregister(conn.sock)
        conn.sock.close()
        conn.closed = True
        connected -= conn.connected
        stats.closes[how] += 1
        if how == "408":
            stats.lifetimes.append(time.monotonic() - conn.opened_at)

    try:
        while (now := time.monotonic()) < end:
            budget = min(MAX_NEW_PER_SECOND / 10, budget + (now - budget_at) * MAX_NEW_PER_SECOND)
            budget_at = now
            while len(conns) < count and budget >= 1:
                budget -= 1
                sock = socket.socket()
                sock.setblocking(False)
                sock.bind((sources[next_source % len(sources)], 0))
                next_source += 1
                if sock.connect_ex((host, port)) not in (0, errno.EINPROGRESS):
                    stats.closes["connect failed"] += 1
                    sock.close()
                    continue
                conns[sock.fileno()] = _Conn(sock, now)
                selector.register(sock, selectors.EVENT_WRITE)
            for key, _ in selector.select(timeout=0.02):
                fd = key.fd
                conn = conns.get(fd)
                if conn is None:
                    continue
                if not conn.connected:
                    if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        close(fd, "connect failed")
                        continue
                    conn.connected = True
                    connected += 1
                    stats.opened += 1
                    stats.peak_open = max(stats.peak_open, connected)
                    selector.modify(conn.sock, selectors.EVENT_READ)
                    try:
                        conn.sock.send(HEAD)
                    except OSError:
                        close(fd, "reset")
                        continue
                    due.append((time.monotonic() + trickle_every, conn))
                    continue
                try:
                    data = conn.sock.recv(4096)
                except OSError:
                    close(fd, "reset")
                    continue
                if data:
                    conn.first_bytes = (conn.first_bytes + data)[:64]
                    continue
                status = conn.first_bytes[9:12].decode("ascii", "replace")
                close(fd, status if conn.first_bytes.startswith(b"HTTP/1.1 ") else "closed silently")
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, conn = due.popleft()
                if conn.closed:
                    continue
                try:
                    conn.sock.send(b"X")  # one more byte of a header that never ends
                except OSError:
                    continue  # the read side will see the close
                due.append((now + trickle_every, conn))
    finally:
        for conn in conns.values():
            conn.sock.close()
        selector.close()
    return stats
