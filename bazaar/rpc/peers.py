"""What counts as "that peer is down" when a gRPC call fails."""

from __future__ import annotations

import grpc
from twisted.internet.defer import CancelledError, TimeoutError


class PeerUnavailable(Exception):
    """A gRPC peer gave no usable answer: treat it as down (try another, or answer 503).
    `sent` is False when the request is known never to have left this process (no
    connection to the peer, or its wait to be sent ran out), so the peer cannot have acted
    on it."""

    def __init__(self, peer: str, reason: str, sent: bool = True) -> None:
        super().__init__(f"{peer}: {reason}")
        self.peer = peer
        self.reason = reason
        self.sent = sent


# What gRPC says when a call found no connection to use: it failed before anything was sent.
NOT_CONNECTED = "failed to connect to all addresses"


def never_sent(error: grpc.RpcError) -> bool:
    details = error.details() if callable(getattr(error, "details", None)) else ""
    return error.code() == grpc.StatusCode.UNAVAILABLE and (details or "").startswith(NOT_CONNECTED)


def is_peer_failure(exc: BaseException) -> bool:
    # TimeoutError: our own deadline on a call (or on its wait to be sent) passed.
    return isinstance(exc, (grpc.RpcError, CancelledError, TimeoutError, PeerUnavailable))
