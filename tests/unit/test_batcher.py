"""The batcher: a lone call goes at once; calls made while batches are out share the next one;
each call keeps its own deadline."""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.internet.task import Clock

from bazaar.reactor.batcher import Batcher, BatchSizeMismatch


class Peer:
    """Records each batch sent (with the call's timeout) and lets the test answer it."""

    def __init__(self) -> None:
        self.sent: list[tuple[list, Deferred]] = []
        self.timeouts: list[float] = []

    def send(self, items: list, timeout: float) -> Deferred:
        d: Deferred = Deferred()
        self.sent.append((items, d))
        self.timeouts.append(timeout)
        return d

    def answer(self, index: int, results=None) -> None:
        items, d = self.sent[index]
        d.callback([f"done {i}" for i in items] if results is None else results)

    @property
    def batches(self) -> list[list]:
        return [items for items, _ in self.sent]


def outcome(d: Deferred):
    box: list = []
    d.addBoth(box.append)
    assert box, "not fired"
    return box[0]


def batcher_for(peer: Peer, **kwargs) -> tuple[Clock, Batcher]:
    clock = Clock()
    return clock, Batcher(peer.send, clock, end_of_turn=False, **kwargs)


def test_an_idle_batcher_sends_each_call_at_once():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=2)
    a, b = batcher.submit("a", 2.0), batcher.submit("b", 2.0)
    assert peer.batches == [["a"], ["b"]]
    peer.answer(1)
    peer.answer(0)
    assert (outcome(a), outcome(b)) == ("done a", "done b")


def test_calls_made_while_busy_leave_together_in_order():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1)
    first = batcher.submit(1, 2.0)
    later = [batcher.submit(i, 2.0) for i in (2, 3, 4)]
    assert len(peer.sent) == 1 and batcher.queued == 3
    peer.answer(0)
    assert outcome(first) == "done 1"
    assert peer.batches[1] == [2, 3, 4]
    peer.answer(1)
    assert [outcome(d) for d in later] == ["done 2", "done 3", "done 4"]
    assert batcher.batches_sent == 2 and batcher.items_sent == 4


def test_batches_never_exceed_the_limit():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1, max_batch=2)
    for i in range(6):
        batcher.submit(i, 2.0)
    for index in range(3):
        peer.answer(index)
    assert peer.batches == [[0], [1, 2], [3, 4], [5]]


@pytest.mark.parametrize("fails", [False, True], ids=["answered", "failed"])
def test_the_calls_queued_behind_a_batch_leave_before_its_callers_hear_how_it_went(fails):
    # Its callers' work (a front end writing each trade's HTTP answer) would otherwise delay
    # the next batch, which only the peer's answer was waiting for.
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1)
    first = batcher.submit(1, 2.0)
    later = batcher.submit(2, 2.0)
    batches_when_heard: list[list] = []
    first.addBoth(lambda result: batches_when_heard.append(peer.batches) or result)
    if fails:
        peer.sent[0][1].errback(RuntimeError("peer gone"))
        assert isinstance(outcome(first).value, RuntimeError)
    else:
        peer.answer(0)
        assert outcome(first) == "done 1"
    assert batches_when_heard == [[[1], [2]]]
    peer.answer(1)
    assert outcome(later) == "done 2"


def test_a_batch_call_gets_the_earliest_deadline_of_its_items():
    peer = Peer()
    clock, batcher = batcher_for(peer, max_in_flight=1)
    batcher.submit("first", 2.0)
    batcher.submit("patient", 5.0)
    clock.advance(0.5)
    batcher.submit("hurried", 1.0)  # due at 1.5, before "patient" (5.0)
    clock.advance(0.25)
    peer.answer(0)
    assert peer.batches[1] == ["patient", "hurried"]
    assert peer.timeouts == [2.0, pytest.approx(0.75)]


def test_a_call_still_queued_at_its_deadline_times_out_and_is_never_sent():
    peer = Peer()
    clock, batcher = batcher_for(peer, max_in_flight=1)
    batcher.submit("stuck", 10.0)
    late = batcher.submit("late", 1.0)
    kept = batcher.submit("kept", 10.0)
    clock.advance(1.0)
    assert outcome(late).check(TimeoutError)
    assert batcher.queued == 1
    peer.answer(0)
    assert peer.batches[1] == ["kept"]
    peer.answer(1)
    assert outcome(kept) == "done kept"


def test_a_sent_call_is_bounded_by_its_batch_not_by_a_timer_of_its_own():
    # Once sent, the item's fate is its call's: the batch's deadline is no later than its own.
    peer = Peer()
    clock, batcher = batcher_for(peer)
    d = batcher.submit("a", 1.0)
    clock.advance(5.0)
    assert not d.called
    peer.sent[0][1].errback(TimeoutError("deadline exceeded"))
    assert outcome(d).check(TimeoutError)


def test_a_failed_batch_fails_each_of_its_calls_and_the_next_batch_still_goes():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1)
    first = batcher.submit("a", 2.0)
    queued = batcher.submit("b", 2.0)
    peer.sent[0][1].errback(ConnectionError("peer gone"))
    assert outcome(first).check(ConnectionError)
    assert peer.batches[1] == ["b"]
    peer.answer(1)
    assert outcome(queued) == "done b"


def test_a_wrong_number_of_results_fails_the_batch():
    peer = Peer()
    _, batcher = batcher_for(peer)
    d = batcher.submit("a", 2.0)
    peer.answer(0, results=["x", "y"])
    assert outcome(d).check(BatchSizeMismatch)


def test_a_cancelled_queued_call_is_never_sent():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1)
    batcher.submit("a", 2.0)
    gone = batcher.submit("b", 2.0)
    kept = batcher.submit("c", 2.0)
    gone.cancel()
    assert outcome(gone).check(CancelledError)
    assert batcher.queued == 1
    peer.answer(0)
    assert peer.batches[1] == ["c"]
    peer.answer(1)
    assert outcome(kept) == "done c"


def test_a_call_cancelled_in_flight_is_ignored_when_its_batch_returns():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1)
    d = batcher.submit("a", 2.0)
    queued = batcher.submit("b", 2.0)
    d.cancel()
    peer.answer(0)
    assert outcome(d).check(CancelledError)
    assert outcome(peer.sent[0][1]) is None  # answering it raised nothing (no AlreadyCalledError)
    assert peer.batches[1] == ["b"]  # and the queue moved on
    peer.answer(1)
    assert outcome(queued) == "done b"


def test_a_batch_nobody_waits_for_any_more_gives_up_its_place_one_at_a_time():
    # A caller that gave up on the peer (a failed probe) cancels what it sent: the calls
    # queued behind must not wait out that batch's deadline.
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=1)
    first = batcher.submit("a", 2.0)
    given_up = [batcher.submit("b", 2.0), batcher.submit("c", 2.0)]
    peer.answer(0)
    assert outcome(first) == "done a" and peer.batches[1] == ["b", "c"]
    queued = batcher.submit("d", 2.0)
    given_up[0].cancel()
    assert len(peer.sent) == 2, "one item of the batch in flight is still wanted"
    given_up[1].cancel()
    assert peer.batches[2] == ["d"], "nobody wants the answer of the batch in flight any more"
    queued.cancel()  # this batch is abandoned too, but only one may be at a time
    later = batcher.submit("e", 2.0)
    assert len(peer.sent) == 3, "at most max_in_flight + 1 calls are out"
    peer.answer(1)  # the abandoned batch's answer: ignored, and the batch of d gives up its place
    assert peer.batches[3] == ["e"]
    peer.answer(3)
    assert outcome(later) == "done e"
    peer.answer(2)
    batcher.submit("f", 2.0)
    assert peer.batches[4] == ["f"], "none is out any more: the next call leaves at once"
    assert all(outcome(d).check(CancelledError) for d in [*given_up, queued])


def test_unwanted_batches_give_up_their_places_in_turn():
    peer = Peer()
    _, batcher = batcher_for(peer, max_in_flight=2)
    sent = [batcher.submit(name, 2.0) for name in "abc"]
    sent[0].cancel()  # "a" gives up its place: "c" leaves
    assert peer.batches == [["a"], ["b"], ["c"]]
    sent[1].cancel()
    sent[2].cancel()  # both wait their turn: one abandoned batch at a time
    queued = batcher.submit("d", 2.0)
    assert len(peer.sent) == 3
    peer.answer(0)
    assert peer.batches[3] == ["d"], "the batch of b gave up its place"
    peer.answer(2)  # the batch of c, still holding its place, returns
    later = batcher.submit("e", 2.0)
    assert peer.batches[4] == ["e"], "out: d, and b abandoned"
    for i in (1, 3, 4):
        peer.answer(i)
    assert (outcome(queued), outcome(later)) == ("done d", "done e")
    assert all(outcome(d).check(CancelledError) for d in sent)


def test_a_peer_answering_at_once_drains_the_queue():
    clock = Clock()
    batcher = Batcher(lambda items, timeout: succeed([i * 2 for i in items]), clock, max_in_flight=1,
                      end_of_turn=False)
    assert [outcome(batcher.submit(i, 2.0)) for i in range(5)] == [0, 2, 4, 6, 8]


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        Batcher(lambda items, timeout: succeed(items), Clock(), max_in_flight=0)


def test_at_the_end_of_a_turn_the_calls_of_that_turn_leave_together():
    clock, peer = Clock(), Peer()
    batcher = Batcher(peer.send, clock, max_in_flight=2)
    ds = [batcher.submit(i, 2.0) for i in range(3)]
    assert peer.sent == []
    clock.advance(0)
    assert peer.batches == [[0, 1, 2]]
    later = batcher.submit(3, 2.0)
    clock.advance(0)
    assert peer.batches == [[0, 1, 2], [3]]
    peer.answer(0)
    peer.answer(1)
    assert [outcome(d) for d in [*ds, later]] == ["done 0", "done 1", "done 2", "done 3"]
