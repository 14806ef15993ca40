"""Receiving a leader's snapshot (fetch_snapshot): a stream that is not the file it announced
is refused and leaves no file behind."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from bazaar.core.snapshot import MalformedSnapshot
from bazaar.order.snapshot import fetch_snapshot
from bazaar.v1 import order_pb2

FILE = b"SQLite format 3\x00" + bytes(range(256)) * 20


class Stream:
    def __init__(self, messages: list[order_pb2.FetchSnapshotResponse]) -> None:
        self._messages = iter(messages)
        self.cancelled = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._messages)

    def cancel(self) -> None:
        self.cancelled = True


class Channel:
    """Answers FetchSnapshot with `messages`; remembers what was asked."""

    def __init__(self, messages: list[order_pb2.FetchSnapshotResponse]) -> None:
        self.stream = Stream(messages)
        self.asked: list[Any] = []

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def call(request: Any, timeout: float | None = None) -> Stream:
            assert method.endswith("/FetchSnapshot") and timeout == 5.0
            self.asked.append(request)
            return self.stream

        return call

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return None  # the stub makes every method's; none but FetchSnapshot is called


def messages(data: bytes = FILE, size: int | None = None, digest: bytes | None = None, pieces: int = 3,
             header: dict | None = None) -> list[order_pb2.FetchSnapshotResponse]:
    step = max(1, len(data) // pieces)
    head = {"last_index": 7, "last_chain": bytes(16), "epoch": 2, "size": len(data) if size is None else size,
            **(header or {})}
    return [
        order_pb2.FetchSnapshotResponse(**head),
        *[order_pb2.FetchSnapshotResponse(data=data[i:i + step]) for i in range(0, len(data), step)],
        order_pb2.FetchSnapshotResponse(digest=hashlib.sha256(data).digest() if digest is None else digest),
    ]


def test_the_file_arrives_whole_with_what_its_header_said(tmp_path: Path) -> None:
    channel = Channel(messages())
    received = fetch_snapshot(channel, "127.0.0.1:1", tmp_path, 5.0, 1.0)
    assert received.path.read_bytes() == FILE and received.path.parent == tmp_path
    assert (received.last_index, received.last_chain, received.epoch) == (7, bytes(16), 2)
    assert channel.asked == [order_pb2.FetchSnapshotRequest(caller="127.0.0.1:1")]


@pytest.mark.parametrize("stream, why", [
    ([], "first message"),
    (messages(header={"data": b"x"}), "first message"),
    (messages(size=0), "first message"),
    (messages(size=-1), "first message"),
    (messages(size=len(FILE) - 1), "larger than announced"),
    (messages(size=len(FILE) + 1), "damaged or incomplete"),
    (messages(digest=bytes(32)), "damaged or incomplete"),
    (messages()[:-1], "ended before"),
])
def test_a_stream_that_is_not_the_file_it_announced_is_refused_and_leaves_nothing(
    tmp_path: Path, stream: list, why: str,
) -> None:
    channel = Channel(stream)
    with pytest.raises(MalformedSnapshot, match=why):
        fetch_snapshot(channel, "127.0.0.1:1", tmp_path, 5.0, 1.0)
    assert list(tmp_path.iterdir()) == []
    assert channel.stream.cancelled
