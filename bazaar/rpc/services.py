"""gRPC servers and channels as Twisted services.

Both are created in startService, not in makeService: twistd forks to daemonize after
makeService, and gRPC's threads and sockets do not survive a fork.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from twisted.application.service import Service
from twisted.internet import threads
from twisted.logger import Logger

from bazaar.config import Address
from bazaar.rpc.health import HealthServicer
from bazaar.rpc.transport import Transport
from bazaar.rpc.limits import MAX_CONCURRENT_RPCS, MAX_CONNECTIONS, MAX_MESSAGE
from bazaar.rpc.names import HOLD_SERVICE

# Reconnect to a restarted peer within a fraction of a second instead of gRPC's default
# exponential backoff (up to two minutes), so leader selection and rejoin see it promptly.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.enable_retries", 0),
    # A connection through a partition stalls (the kernel keeps it open, retransmitting ever
    # more slowly): a ping unanswered for a second closes it, so the channel reconnects as
    # soon as the network heals instead of waiting for TCP's next retransmission.
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # The largest message a correct peer sends (rpc/limits.py), not gRPC's 4 MB default.
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]
# What a server must allow for those pings not to count as abuse (a GOAWAY after two).
SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 500),
    ("grpc.http2.max_ping_strikes", 0),
    # A connection that has not finished its TLS handshake within 5 s is closed, and a server
    # keeps at most this many connections: plain TCP connections that never speak would
    # otherwise hold a descriptor each for two minutes, until none is left for peers.
    ("grpc.server_handshake_timeout_ms", 5000),
    ("grpc.max_allowed_incoming_connections", MAX_CONNECTIONS),
    # Anything larger than a correct peer's largest message is refused before it is parsed
    # (RESOURCE_EXHAUSTED): a request of many small orders used to cost hundreds of MB.
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]

log = Logger()

HOLD_SECONDS = 60.0  # a channel's hold stream is renewed this often (every call has a deadline)
HOLD_RENEW_DELAY = 0.1


class GrpcServerService(Service):
    """Serves the servicers that `register` adds, plus the standard health service."""

    def __init__(
        self,
        address: Address,
        register: Callable[[grpc.Server], None],
        service_names: list[str],
        transport: Transport,
        workers: int = 16,
        serving: bool = True,
    ) -> None:
        self.address = address
        self._transport = transport
        self._register = register
        self._service_names = service_names
        self._workers = workers
        # False: the named services report NOT_SERVING until set_serving(True), so the
        # front end does not pick a replica that is still catching up.
        self._serving = serving
        self.server: grpc.Server | None = None
        self.health: HealthServicer | None = None

    def startService(self) -> None:
        server = grpc.server(
            ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="grpc-handler"),
            options=SERVER_OPTIONS,
            interceptors=self._transport.interceptors,
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        self._register(server)
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        try:
            self._transport.listen(server, str(self.address))
        except RuntimeError as e:
            # Release gRPC's threads, or they keep the failed process alive.
            server.stop(None)
            raise RuntimeError(f"cannot listen on {self.address}: {e}") from None
        server.start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.server = server
        self.set_serving(self._serving)
        log.info("gRPC listening on {address}", address=str(self.address))
        super().startService()

    def set_serving(self, serving: bool) -> None:
        self._serving = serving
        if self.health is not None:
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in self._service_names:
                self.health.set(name, status)

    def stop_serving(self) -> None:
        """Every service, the server as a whole too, reports NOT_SERVING from now on."""
        self.set_serving(False)
        if self.health is not None:
            self.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)

    def stopService(self) -> Any:
        super().stopService()
        server, self.server = self.server, None
        if server is None:
            return None
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        stopped = server.stop(grace=0.5)
        return threads.deferToThread(stopped.wait, 2.0)


class Channels(Service):
    """One long-lived channel per peer address, shared by every call to that peer.

    Each channel also carries a health Watch stream that stays open (a "hold"). grpcio runs a
    thread per channel that polls its calls, and ends it whenever no call is open; a peer
    called one RPC at a time (a follower link, a batch to the catalog) would cost a new
    thread, started on the reactor thread, for nearly every call. The hold keeps that thread
    alive. The server answers a Watch without tying up a handler thread (rpc/health.py's
    non-blocking Watch, which the role check keeps so), and never writes to this one again
    (HOLD_SERVICE).
    """

    def __init__(self, transport: Transport, reactor: Any = None) -> None:
        self._transport = transport
        self._channels: dict[str, grpc.Channel] = {}
        self._holds: dict[str, Any] = {}
        self._reactor = reactor

    def get(self, address: Address | str) -> grpc.Channel:
        key = str(address)
        channel = self._channels.get(key)
        if channel is None:
            if not self.running:
                raise RuntimeError("channels are made once the service has started")
            channel = self._channels[key] = self._transport.dial(key, CHANNEL_OPTIONS)
            self._hold(key, channel)
        return channel

    def _hold(self, key: str, channel: grpc.Channel) -> None:
        if not self.running or self._channels.get(key) is not channel:
            return
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=HOLD_SERVICE), timeout=HOLD_SECONDS, wait_for_ready=True
        )
        self._holds[key] = watch
        reactor = self._reactor or _global_reactor()
        # Ends with the deadline, or when the peer stops: open another (a stopped peer's
        # channel then waits for it to come back, which keeps the thread just the same).
        watch.add_done_callback(
            lambda _: reactor.callFromThread(reactor.callLater, HOLD_RENEW_DELAY, self._hold, key, channel)
        )

    def stopService(self) -> None:
        super().stopService()
        channels, self._channels = self._channels, {}
        holds, self._holds = self._holds, {}
        for watch in holds.values():
            watch.cancel()
        for channel in channels.values():
            channel.close()


def _global_reactor() -> Any:
    from twisted.internet import reactor

    return reactor
