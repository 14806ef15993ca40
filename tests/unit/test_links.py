"""The leader's sender to one peer (Link): one call in flight, backoff after failures, a feed
that decides what to send and how long to wait."""

from __future__ import annotations

import grpc
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from bazaar.order.links import RETRY_FIRST, RETRY_MAX, STILL_UNREACHABLE_EVERY, Later, Link


class Down(grpc.RpcError):
    """A failed call, as gRPC reports a peer that is down."""


class FakeFeed:
    """Hands out the requests queued in `pending`, one per call; records what the link tells it."""

    def __init__(self, *pending: str) -> None:
        self.pending = list(pending)
        self.asked = 0
        self.answers: list[str] = []
        self.unreachable_count = 0
        self.delay: float | None = None  # what answered() returns

    def next_request(self) -> str | None:
        self.asked += 1
        return self.pending[0] if self.pending else None

    def answered(self, response: str) -> float | None:
        self.answers.append(response)
        if self.pending and self.pending[0] == response:
            self.pending.pop(0)
        return self.delay

    def unreachable(self) -> None:
        self.unreachable_count += 1


class Peer:
    """Records each call; the test answers or fails it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, Deferred]] = []

    def send(self, request: str, wait_for_ready: bool) -> Deferred:
        d: Deferred = Deferred()
        self.calls.append((request, wait_for_ready, d))
        return d

    @property
    def sent(self) -> list[str]:
        return [request for request, _, _ in self.calls]

    def answer(self) -> None:
        request, _, d = self.calls[-1]
        d.callback(request)

    def fail(self) -> None:
        self.calls[-1][2].errback(Down())


def link_with(*pending: str) -> tuple[Clock, FakeFeed, Peer, Link]:
    clock, feed, peer = Clock(), FakeFeed(*pending), Peer()
    return clock, feed, peer, Link(clock, "peer", feed, peer.send)


def test_one_call_in_flight_and_the_next_goes_when_it_is_answered() -> None:
    _, feed, peer, link = link_with("a", "b")
    link.kick()
    link.kick()
    assert peer.sent == ["a"]
    peer.answer()
    assert peer.sent == ["a", "b"] and feed.answers == ["a"]
    peer.answer()
    assert peer.sent == ["a", "b"] and feed.pending == []


def test_kicks_while_sending_are_coalesced_into_one_next_request() -> None:
    _, feed, peer, link = link_with("a")
    link.kick()
    feed.pending += ["b", "c"]
    for _ in range(5):
        link.kick()
    assert peer.sent == ["a"] and feed.asked == 1, "the feed is not asked while a call is out"
    peer.answer()
    assert peer.sent == ["a", "b"] and feed.asked == 2


def test_nothing_is_sent_while_the_feed_has_nothing() -> None:
    clock, feed, peer, link = link_with()
    link.kick()
    assert peer.sent == [] and clock.getDelayedCalls() == []
    feed.pending.append("a")
    link.kick()
    assert peer.sent == ["a"]


def test_failures_back_off_doubling_up_to_a_limit() -> None:
    clock, feed, peer, link = link_with("a")
    link.kick()
    delays = []
    for _ in range(8):
        peer.fail()
        (retry,) = clock.getDelayedCalls()
        delays.append(retry.getTime() - clock.seconds())
        link.kick()  # a kick does not cut the wait short
        assert len(peer.calls) == len(delays)
        clock.advance(delays[-1])
        assert len(peer.calls) == len(delays) + 1
    assert delays == pytest.approx([min(RETRY_MAX, RETRY_FIRST * 2 ** i) for i in range(8)])
    assert delays[-1] == pytest.approx(RETRY_MAX)
    assert feed.unreachable_count == 8


def test_a_peer_that_stays_unreachable_is_logged_again_now_and_then() -> None:
    clock, feed, peer, link = link_with("a", "b")
    with capturedLogs() as events:
        link.kick()
        attempts = 0
        while clock.seconds() < 2.5 * STILL_UNREACHABLE_EVERY:
            peer.fail()
            attempts += 1
            clock.advance(RETRY_MAX)
        peer.answer()  # "b" goes at once; a new run of failures is logged at once
        peer.fail()
    lines = [e["log_format"] for e in events if e.get("name") == "peer"]
    assert attempts > 100
    assert lines == [
        "{name} unreachable ({error}); retrying with backoff",
        "{name} still unreachable after {attempts} attempts ({error}); retrying",
        "{name} still unreachable after {attempts} attempts ({error}); retrying",
        "{name} unreachable ({error}); retrying with backoff",
    ]


def test_an_answer_resets_the_backoff() -> None:
    clock, feed, peer, link = link_with("a", "b")
    link.kick()
    peer.fail()
    clock.advance(RETRY_FIRST)
    peer.fail()
    clock.advance(RETRY_FIRST * 2)
    peer.answer()  # "a" gets through; "b" goes at once
    assert peer.sent[-1] == "b"
    peer.fail()
    (retry,) = clock.getDelayedCalls()
    assert retry.getTime() - clock.seconds() == pytest.approx(RETRY_FIRST)


def test_calls_wait_for_ready_until_the_peer_has_answered_and_after_each_failure() -> None:
    clock, _, peer, link = link_with("a", "b", "c")
    link.kick()
    peer.answer()
    peer.fail()
    clock.advance(RETRY_FIRST)
    assert [wait for _, wait, _ in peer.calls] == [True, False, True]


def test_a_delay_from_the_feed_is_honoured_even_when_kicked() -> None:
    clock, feed, peer, link = link_with("a", "b")
    feed.delay = 0.5
    link.kick()
    peer.answer()
    link.kick()
    clock.advance(0.49)
    assert peer.sent == ["a"]
    clock.advance(0.01)
    assert peer.sent == ["a", "b"]


def test_close_stops_retries_and_ignores_a_late_answer() -> None:
    clock, feed, peer, link = link_with("a", "b")
    link.kick()
    peer.fail()
    link.close()
    assert clock.getDelayedCalls() == []
    clock.advance(RETRY_MAX * 10)
    link.kick()
    assert peer.sent == ["a"]

    clock, feed, peer, link = link_with("a", "b")
    link.kick()
    link.close()
    peer.answer()
    assert feed.answers == [] and peer.sent == ["a"] and clock.getDelayedCalls() == []


def test_close_during_a_call_that_then_fails_schedules_nothing() -> None:
    clock, feed, peer, link = link_with("a")
    link.kick()
    link.close()
    peer.fail()
    assert clock.getDelayedCalls() == [] and feed.unreachable_count == 0


@pytest.mark.parametrize("error", [RuntimeError("a bug"), Down()])
def test_any_failure_is_retried(error: Exception) -> None:
    clock, feed, peer, link = link_with("a")
    link.kick()
    peer.calls[-1][2].errback(error)
    assert feed.unreachable_count == 1
    clock.advance(RETRY_FIRST)
    assert peer.sent == ["a", "a"]


def test_a_feed_that_says_later_is_asked_again_then_and_kicks_meanwhile_send_nothing() -> None:
    clock, feed, peer, link = link_with("a")
    feed.pending = [Later(0.05)]
    link.kick()
    assert peer.sent == [] and feed.asked == 1
    feed.pending = ["a"]
    link.kick()
    assert peer.sent == [] and feed.asked == 1, "the wait is not cut short"
    clock.advance(0.049)
    assert peer.sent == []
    clock.advance(0.001)
    assert peer.sent == ["a"] and feed.asked == 2
