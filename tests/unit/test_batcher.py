"""The batcher: a lone call goes at once; calls made while batches are out share the next one."""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError, Deferred, succeed

from bazaar.batcher import Batcher, BatchSizeMismatch


class Peer:
    """Records each batch sent and lets the test answer it."""

    def __init__(self) -> None:
        self.sent: list[tuple[list, Deferred]] = []

    def send(self, items: list) -> Deferred:
        d: Deferred = Deferred()
        self.sent.append((items, d))
        return d

    def answer(self, index: int, results=None) -> None:
        items, d = self.sent[index]
        d.callback([f"done {i}" for i in items] if results is None else results)


def outcome(d: Deferred):
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


def test_an_idle_batcher_sends_each_call_at_once():
    peer = Peer()
    batcher = Batcher(peer.send, max_in_flight=2)
    a, b = batcher.submit("a"), batcher.submit("b")
    assert [items for items, _ in peer.sent] == [["a"], ["b"]]
    peer.answer(1)
    peer.answer(0)
    assert (outcome(a), outcome(b)) == ("done a", "done b")


def test_calls_made_while_busy_leave_together_in_order():
    peer = Peer()
    batcher = Batcher(peer.send, max_in_flight=1)
    first = batcher.submit(1)
    later = [batcher.submit(i) for i in (2, 3, 4)]
    assert len(peer.sent) == 1 and batcher.queued == 3
    peer.answer(0)
    assert outcome(first) == "done 1"
    assert peer.sent[1][0] == [2, 3, 4]
    peer.answer(1)
    assert [outcome(d) for d in later] == ["done 2", "done 3", "done 4"]
    assert batcher.batches_sent == 2


def test_batches_never_exceed_the_limit():
    peer = Peer()
    batcher = Batcher(peer.send, max_in_flight=1, max_batch=2)
    batcher.submit(0)
    for i in range(1, 6):
        batcher.submit(i)
    peer.answer(0)
    peer.answer(1)
    peer.answer(2)
    assert [items for items, _ in peer.sent] == [[0], [1, 2], [3, 4], [5]]


def test_a_failed_batch_fails_each_of_its_calls_and_the_next_batch_still_goes():
    peer = Peer()
    batcher = Batcher(peer.send, max_in_flight=1)
    first = batcher.submit("a")
    queued = batcher.submit("b")
    peer.sent[0][1].errback(ConnectionError("peer gone"))
    assert outcome(first).check(ConnectionError)
    assert peer.sent[1][0] == ["b"]
    peer.answer(1)
    assert outcome(queued) == "done b"


def test_a_wrong_number_of_results_fails_the_batch():
    peer = Peer()
    batcher = Batcher(peer.send)
    d = batcher.submit("a")
    peer.answer(0, results=["x", "y"])
    assert outcome(d).check(BatchSizeMismatch)


def test_a_cancelled_queued_call_is_never_sent():
    peer = Peer()
    batcher = Batcher(peer.send, max_in_flight=1)
    batcher.submit("a")
    gone = batcher.submit("b")
    kept = batcher.submit("c")
    gone.cancel()
    assert outcome(gone).check(CancelledError)
    peer.answer(0)
    assert peer.sent[1][0] == ["c"]
    peer.answer(1)
    assert outcome(kept) == "done c"


def test_a_call_cancelled_in_flight_is_ignored_when_its_batch_returns():
    peer = Peer()
    batcher = Batcher(peer.send, max_in_flight=1)
    d = batcher.submit("a")
    d.cancel()
    peer.answer(0)  # no AlreadyCalledError
    assert outcome(d).check(CancelledError)


def test_a_peer_answering_at_once_drains_the_queue():
    batcher = Batcher(lambda items: succeed([i * 2 for i in items]), max_in_flight=1)
    assert [outcome(batcher.submit(i)) for i in range(5)] == [0, 2, 4, 6, 8]


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        Batcher(lambda items: succeed(items), max_in_flight=0)


def test_with_a_reactor_the_calls_of_one_turn_leave_together():
    from twisted.internet.task import Clock

    clock, peer = Clock(), Peer()
    batcher = Batcher(peer.send, max_in_flight=2, reactor=clock)
    ds = [batcher.submit(i) for i in range(3)]
    assert peer.sent == []
    clock.advance(0)
    assert [items for items, _ in peer.sent] == [[0, 1, 2]]
    later = batcher.submit(3)
    clock.advance(0)
    assert [items for items, _ in peer.sent] == [[0, 1, 2], [3]]
    peer.answer(0)
    peer.answer(1)
    assert [outcome(d) for d in [*ds, later]] == ["done 0", "done 1", "done 2", "done 3"]
