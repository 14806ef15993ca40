"""Reading another replica's log stream: a peer that falls silent, at the start or between two
batches, is given up on within the idle limit; one that keeps sending is read to the end."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest

from bazaar.order.catchup import stream_log
from bazaar.v1 import order_pb2


class Cancelled(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.CANCELLED


class Stream:
    """Yields `messages`, then hangs (a frozen peer) until cancelled, or ends."""

    def __init__(self, messages: list[Any], hang_after: bool) -> None:
        self._messages = messages
        self._hang = hang_after
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def __iter__(self):
        for message in self._messages:
            if self._cancelled.is_set():
                raise Cancelled()
            yield message
        if self._hang:
            if not self._cancelled.wait(10):
                raise AssertionError("never cancelled")
            raise Cancelled()


class Channel:
    """What OrderServiceStub needs of a channel, answering Synchronize with `stream`."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return lambda request, timeout=None: self._stream


def batch(prev: int) -> order_pb2.SynchronizeResponse:
    return order_pb2.SynchronizeResponse(prev_index=prev, prev_chain=b"\0" * 16, epoch=1)


def test_a_peer_that_falls_silent_between_two_batches_is_given_up_on():
    started = time.monotonic()
    with pytest.raises(grpc.RpcError):
        stream_log(Channel(Stream([batch(-1), batch(-1)], hang_after=True)),
                   order_pb2.SynchronizeRequest(), deadline=60, idle_within=0.1)
    assert time.monotonic() - started < 5, "given up on within the idle limit, not the deadline"


def test_a_stream_that_keeps_coming_is_read_to_its_end_however_slow_its_reader():
    seen = []

    def slow_write(prev: int, chain: bytes, records: list, epoch: int, leader_commit: int) -> None:
        time.sleep(0.15)  # our own work on a batch is not the peer's silence
        seen.append(prev)

    remote = stream_log(Channel(Stream([batch(-1), batch(-1), batch(-1)], hang_after=False)),
                        order_pb2.SynchronizeRequest(), deadline=60, on_batch=slow_write, idle_within=0.1)
    assert seen == [-1, -1, -1] and remote.epoch == 1
