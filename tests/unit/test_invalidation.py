"""The leader's cache pushes: one in flight, spaced, coalesced, and a name traded during its own
push is pushed again."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from bazaar.config import load_config, parse_config
from bazaar.order.invalidation import PUSH_SPACING, CacheInvalidator


class FakeFrontEnd:
    def __init__(self) -> None:
        self.requests: list[tuple[str, Deferred]] = []

    def get(self, url: str, **kwargs) -> Deferred:
        d: Deferred = Deferred()
        self.requests.append((url.rsplit("/", 1)[1], d))
        return d

    def answer(self, index: int) -> None:
        self.requests[index][1].errback(ConnectionError("answered"))  # content() is not needed

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.requests]


def invalidator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clock, front = Clock(), FakeFrontEnd()
    clock.advance(100)
    return clock, front, CacheInvalidator(clock, load_config(None), None, get=front.get)


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
    assert front.names == ["tesla", "ford"]
    front.answer(1)
    clock.advance(PUSH_SPACING)
    assert front.names == ["tesla", "ford", "apple"]
    front.answer(2)
    clock.advance(1)
    assert len(front.requests) == 3


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


def test_a_push_that_raises_does_not_stop_the_pushes_after_it(tmp_path, monkeypatch):
    clock, front = Clock(), FakeFrontEnd()
    calls = []

    def get(url, **kwargs):
        calls.append(url.rsplit("/", 1)[1])
        if len(calls) == 1:
            raise ValueError("bad URL")
        return front.get(url, **kwargs)

    push = CacheInvalidator(clock, load_config(None), None, get=get)
    push("tesla")
    push("ford")
    clock.advance(PUSH_SPACING)
    assert calls == ["tesla", "ford"]


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

    def get(url, **kwargs):
        d: Deferred = Deferred()
        asked.append((url, d))
        return d

    push = CacheInvalidator(clock, parse_config(TWO_FRONT_ENDS, tmp_path), None, get=get)
    push("tesla")
    assert sorted(url for url, _ in asked) == ["http://127.0.0.1:7002/cache/tesla", "http://127.0.0.1:7004/cache/tesla"]
    push("ford")  # both lanes are busy: ford waits in each
    next(d for url, d in asked if ":7002/" in url).errback(ConnectionError("answered"))  # front end 2 never answers
    clock.advance(1)
    assert [url for url, _ in asked[2:]] == ["http://127.0.0.1:7002/cache/ford"]
    assert push.pushes == 3
    lanes = {lane.frontend_id: lane for lane in push.lanes}
    assert (lanes[1].pushes, lanes[1].failures, lanes[1].waiting) == (2, 1, 0)
    assert (lanes[2].pushes, lanes[2].failures, lanes[2].waiting) == (1, 0, 1), "ford waits behind tesla"
