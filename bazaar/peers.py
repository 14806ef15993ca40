"""What counts as "that peer is down" when a gRPC call fails."""

from __future__ import annotations

import grpc
from twisted.internet.defer import CancelledError


class PeerUnavailable(Exception):
    """A gRPC peer gave no usable answer: treat it as down (try another, or answer 503)."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason


def is_peer_failure(exc: BaseException) -> bool:
    return isinstance(exc, (grpc.RpcError, CancelledError, PeerUnavailable))
