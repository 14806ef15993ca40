"""What counts as "that peer is down" when a gRPC call fails."""

from __future__ import annotations

import grpc
from twisted.internet.defer import CancelledError, TimeoutError


class PeerUnavailable(Exception):
    """A gRPC peer gave no usable answer: treat it as down (try another, or answer 503)."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason


def is_peer_failure(exc: BaseException) -> bool:
    # TimeoutError: our own deadline on a call (or on its wait to be sent) passed.
    return isinstance(exc, (grpc.RpcError, CancelledError, TimeoutError, PeerUnavailable))
