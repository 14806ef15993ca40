"""The leader's cache pushes: one in flight per front end, spaced, the names waiting in one push, a name traded
during its own push pushed again, a push that fails sent again, and once per leadership a push
that drops everything."""

from __future__ import annotations

import json

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from bazaar.config import MAX_STOCK_NAME, load_config, parse_config
from bazaar.frontend.channel import MAX_BODY
from bazaar.order.invalidation import (
    EVERYTHING, PUSH_BYTES, PUSH_NAMES, PUSH_SPACING, RETRY_FIRST, RETRY_MOST, CacheInvalidator,
)


class Answer:
    """A front end's HTTP response, as treq.content reads it."""

    def __init__(self, code: int = 200) -> None:
        self.code = code
        self.length = 12

    def deliverBody(self, protocol) -> None:
        protocol.dataReceived(b'{"data": {}}')
        protocol.connectionLost(Failure(ResponseDone()))


def pushed(method: str, url: str, **kwargs) -> str:
    """A push as the tests name it: the names it carries, comma-separated, or the request."""
    if method == "POST" and url.endswith("/cache/invalidations"):
        assert kwargs["headers"] == {b"Content-Type": [b"application/json"]}
        return ",".join(json.loads(kwargs["data"])["names"])
    return f"{method} {url}"


class FakeFrontEnd:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Deferred]] = []
        self.bodies: list[bytes | None] = []

    def request(self, method: str, url: str, **kwargs) -> Deferred:
        d: Deferred = Deferred()
        self.requests.append((pushed(method, url, **kwargs), d))
        self.bodies.append(kwargs.get("data"))
        return d

    def answer(self, index: int, code: int = 200) -> None:
        self.requests[index][1].callback(Answer(code))

    def drop(self, index: int) -> None:
        self.requests[index][1].errback(ConnectionError("no answer"))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.requests]


def invalidator(tmp_path, monkeypatch, text: str | None = None):
    monkeypatch.chdir(tmp_path)
    clock, front = Clock(), FakeFrontEnd()
    clock.advance(100)
    config = load_config(None) if text is None else parse_config(text, tmp_path)
    return clock, front, CacheInvalidator(clock, config, None, request=front.request)


def test_a_lone_trade_is_pushed_at_once(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    assert front.names == ["tesla"]


def test_names_traded_during_a_push_wait_and_repeats_coalesce(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    for name in ["ford", "apple", "ford", "ford"]:
        push(name)
    assert front.names == ["tesla"]
    front.answer(0)
    assert front.names == ["tesla"]  # spaced: not before PUSH_SPACING after the last start
    clock.advance(PUSH_SPACING)
    assert front.names == ["tesla", "ford,apple"], "every name waiting, oldest first, in one push"
    front.answer(1)
    clock.advance(1)
    assert len(front.requests) == 2 and push.lanes[0].failures == 0


def test_a_push_carries_at_most_push_names(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("first")
    names = [f"s{i}" for i in range(PUSH_NAMES + 5)]
    for name in names:
        push(name)
    front.answer(0)
    clock.advance(PUSH_SPACING)
    assert front.names[1] == ",".join(names[:PUSH_NAMES])
    front.answer(1)
    clock.advance(PUSH_SPACING)
    assert front.names[2] == ",".join(names[PUSH_NAMES:])


def test_a_push_of_the_longest_names_stays_well_inside_what_a_front_end_reads(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("first")
    names = [f"{i:03d}" + "\U0001f4c8" * (MAX_STOCK_NAME - 3) for i in range(PUSH_NAMES)]
    for name in names:
        push(name)
    bodies = []
    for i in range(1, 10):
        front.answer(i - 1)
        clock.advance(PUSH_SPACING)
        if len(front.requests) == i:
            break
        bodies.append(front.bodies[i])
    assert all(len(body) <= PUSH_BYTES < MAX_BODY for body in bodies) and len(bodies) > 1
    assert [n for body in bodies for n in json.loads(body)["names"]] == names, "every name, once, in order"


def test_a_front_end_without_batched_pushes_gets_one_name_a_push(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    push("ford")
    push("apple")
    front.answer(0, 405)  # an earlier release: POST /cache/invalidations is not a route there
    clock.advance(RETRY_FIRST)
    assert front.names[1:] == ["GET http://127.0.0.1:56897/cache/tesla"]
    front.answer(1)
    clock.advance(PUSH_SPACING)
    front.answer(2)
    clock.advance(PUSH_SPACING)
    assert front.names[2:] == ["GET http://127.0.0.1:56897/cache/ford", "GET http://127.0.0.1:56897/cache/apple"]


def test_the_names_of_a_failed_push_go_again_first(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    push("ford")
    push("apple")
    front.answer(0)
    clock.advance(PUSH_SPACING)
    push("nike")
    front.drop(1)  # "ford,apple" got no answer
    push("ford")  # traded again meanwhile: still once
    clock.advance(RETRY_FIRST)
    assert front.names == ["tesla", "ford,apple", "ford,apple,nike"]


def test_a_name_traded_during_its_own_push_is_pushed_again(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    push("tesla")
    front.answer(0)
    clock.advance(PUSH_SPACING)
    assert front.names == ["tesla", "tesla"]


def test_closing_drops_what_waits(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    push("ford")
    front.answer(0)
    push.close()
    clock.advance(1)
    assert front.names == ["tesla"]


def test_a_push_cut_short_by_closing_is_not_sent_again(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    push.close()
    assert front.requests[0][1].called, "the push under way is cancelled"
    push("ford")
    clock.advance(RETRY_MOST)
    assert front.names == ["tesla"] and clock.getDelayedCalls() == []


def test_a_push_that_raises_does_not_stop_the_pushes_after_it(tmp_path, monkeypatch):
    clock, front = Clock(), FakeFrontEnd()
    calls = []

    def request(method, url, **kwargs):
        calls.append(pushed(method, url, **kwargs))
        if len(calls) == 1:
            raise ValueError("bad URL")
        return front.request(method, url, **kwargs)

    push = CacheInvalidator(clock, load_config(None), None, request=request)
    push("tesla")
    push("ford")
    clock.advance(RETRY_FIRST)
    assert calls == ["tesla", "tesla,ford"], "the one that raised is sent again, first"
    front.answer(0)
    clock.advance(PUSH_SPACING)
    assert calls == ["tesla", "tesla,ford"]


def test_a_push_with_no_answer_or_not_200_is_sent_again_until_it_is_taken(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    front.drop(0)  # a frozen front end: the request timed out
    clock.advance(RETRY_FIRST - 0.001)
    assert front.names == ["tesla"], "not at once: a front end that is down is not hammered"
    clock.advance(0.001)
    assert front.names == ["tesla", "tesla"]
    front.answer(1, 503)  # at its connection cap
    clock.advance(2 * RETRY_FIRST)
    assert front.names == ["tesla"] * 3
    front.answer(2, 200)
    clock.advance(1)
    lane = push.lanes[0]
    assert (len(front.requests), lane.failures, lane.waiting) == (3, 2, 0)


def test_retries_back_off_up_to_a_second(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    starts = []
    for i in range(8):
        starts.append(clock.seconds())
        front.drop(i)
        clock.advance(RETRY_MOST)
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
    assert gaps[-1] == RETRY_MOST and len(front.requests) == 9


def test_everything_is_one_push_that_covers_the_names_waiting(tmp_path, monkeypatch):
    clock, front, push = invalidator(tmp_path, monkeypatch)
    push("tesla")
    push("ford")
    push(EVERYTHING)
    push("apple")  # covered by dropping everything, still to be sent
    front.answer(0)
    clock.advance(PUSH_SPACING)
    assert front.names == ["tesla", "DELETE http://127.0.0.1:56897/cache"]
    front.drop(1)
    clock.advance(RETRY_FIRST)
    assert front.names[-1] == "DELETE http://127.0.0.1:56897/cache", "sent again until taken"
    front.answer(2)
    clock.advance(1)
    assert len(front.requests) == 3 and push.lanes[0].waiting == 0


TWO_FRONT_ENDS = """
[frontends.1]
address = "127.0.0.1:7001"
internal = "127.0.0.1:7002"
[frontends.2]
address = "127.0.0.1:7003"
internal = "127.0.0.1:7004"
"""


def test_every_front_end_gets_each_push_and_a_silent_one_holds_up_only_its_own(tmp_path):
    clock, asked = Clock(), []

    def request(method, url, **kwargs):
        d: Deferred = Deferred()
        asked.append((url, pushed(method, url, **kwargs), d))
        return d

    push = CacheInvalidator(clock, parse_config(TWO_FRONT_ENDS, tmp_path), None, request=request)
    push("tesla")
    assert sorted((url, names) for url, names, _ in asked) == [
        ("http://127.0.0.1:7002/cache/invalidations", "tesla"), ("http://127.0.0.1:7004/cache/invalidations", "tesla")]
    push("ford")  # both lanes are busy: ford waits in each
    next(d for url, _, d in asked if ":7002/" in url).callback(Answer(200))  # front end 2 never answers
    clock.advance(1)
    assert [(url, names) for url, names, _ in asked[2:]] == [("http://127.0.0.1:7002/cache/invalidations", "ford")]
    assert push.pushes == 3
    lanes = {lane.frontend_id: lane for lane in push.lanes}
    assert (lanes[1].pushes, lanes[1].failures, lanes[1].waiting) == (2, 0, 0)
    assert (lanes[2].pushes, lanes[2].failures, lanes[2].waiting) == (1, 0, 1), "ford waits behind tesla"
