"""A user-space packet delayer on NFQUEUE, in pure Python (no library, no compiler).

The kernel here has no netem qdisc, so a slow link is made with iptables: a rule
`-j NFQUEUE --queue-num Q --queue-bypass` hands each matching packet to this process, which
holds it for the delay and then tells the kernel to let it go (NF_ACCEPT). It speaks the
nfnetlink_queue protocol itself over an AF_NETLINK socket: bind to queue Q, ask for packet
metadata only (NFQNL_COPY_META: the verdict needs the packet id, never its bytes), a long
queue that accepts rather than drops when full (NFQA_CFG_F_FAIL_OPEN), then one verdict per
packet, in arrival order (one delay for all, so the order holds).

    ip netns exec NS python -m bazaar.chaos.delayer --queue Q --delay-ms D

It prints "ready" once bound (packets that arrive before are not queued: --queue-bypass lets
them through), and exits when its standard input closes or on SIGTERM, releasing every packet
it still holds first. A delayer that dies lets the rest pass undelayed (the queue's bypass),
so a crash can never turn a slow link into a cut one.
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import signal
import socket
import struct
import sys
import time
from typing import Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 0x1
NF_ACCEPT = 1
QUEUE_MAXLEN = 65536
NLA_TYPE_MASK = 0x3FFF  # without the nested and byte-order flags
RECEIVE_BUFFER = 1 << 22


def _align(n: int) -> int:
    return (n + 3) & ~3


def attribute(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * (_align(length) - length)


def message(kind: int, queue: int, attributes: list[bytes], flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    """One nfnetlink message of the queue subsystem: netlink header, nfgenmsg, attributes."""
    payload = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + b"".join(attributes)
    return struct.pack("=IHHII", 16 + len(payload), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + payload


def config_messages(queue: int) -> list[bytes]:
    """Bind to `queue`, metadata only, a long fail-open queue; each asks for an acknowledgement."""
    flags = NLM_F_REQUEST | NLM_F_ACK
    return [
        message(NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))],
                flags, 1),
        message(NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))],
                flags, 2),
        message(NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN))],
                flags, 3),
        message(NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)),
                                          attribute(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))],
                flags, 4),
    ]


def verdict(queue: int, packet_id: int, decision: int = NF_ACCEPT) -> bytes:
    return message(NFQNL_MSG_VERDICT, queue, [attribute(NFQA_VERDICT_HDR, struct.pack("!II", decision, packet_id))])


def parse(data: bytes) -> Iterator[tuple[str, int]]:
    """("packet", id) for each queued packet in a datagram, ("error", errno) for each error
    or acknowledgement (errno 0)."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            return
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, offset + 16)
            yield "error", -error
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            at = offset + 16 + 4  # after nfgenmsg
            while at + 4 <= offset + length:
                alen, akind = struct.unpack_from("=HH", data, at)
                if alen < 4:
                    break
                if akind & NLA_TYPE_MASK == NFQA_PACKET_HDR:
                    (packet_id,) = struct.unpack_from("!I", data, at + 4)
                    yield "packet", packet_id
                at += _align(alen)
        offset += _align(length)


class Delayer:
    def __init__(self, queue: int, delay: float) -> None:
        self.queue = queue
        self.delay = delay
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.sock.bind((0, 0))
        self.held: collections.deque[tuple[float, int]] = collections.deque()
        self.released = 0

    def configure(self) -> None:
        for request in config_messages(self.queue):
            self.sock.send(request)
            for kind, value in parse(self.sock.recv(65536)):
                if kind == "error" and value:
                    raise OSError(value, f"nfnetlink_queue refused the configuration: {os.strerror(value)}")

    def release(self, until: float) -> None:
        while self.held and self.held[0][0] <= until:
            _, packet_id = self.held.popleft()
            self.sock.send(verdict(self.queue, packet_id))
            self.released += 1

    def serve(self, stop_fd: int) -> None:
        watched = [self.sock, stop_fd]
        while True:
            timeout = max(0.0, self.held[0][0] - time.monotonic()) if self.held else None
            readable, _, _ = select.select(watched, [], [], timeout)
            if stop_fd in readable and not os.read(stop_fd, 4096):
                break
            if self.sock in readable:
                now = time.monotonic()
                for kind, value in parse(self.sock.recv(65536)):
                    if kind == "packet":
                        self.held.append((now + self.delay, value))
            self.release(time.monotonic())
        self.release(float("inf"))


class Stop(Exception):
    """SIGTERM: release what is held and exit."""


def _stop(signum: int, frame: object) -> None:
    raise Stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bazaar.chaos.delayer", description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    delayer = Delayer(args.queue, args.delay_ms / 1000.0)
    delayer.configure()
    print("ready", flush=True)
    try:
        delayer.serve(sys.stdin.fileno())
    except Stop:
        delayer.release(float("inf"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
