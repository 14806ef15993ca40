"""What counts as "that peer is down" when a gRPC call fails."""

from __future__ import annotations

import grpc
from twisted.internet.defer import CancelledError


class PeerUnavailable(Exception):
    """A peer did not answer in time or refused the call; try another or report 503."""


def is_peer_failure(exc: BaseException) -> bool:
    return isinstance(exc, (grpc.RpcError, CancelledError, PeerUnavailable))
