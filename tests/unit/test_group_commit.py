import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import deferLater

from bazaar.reactor.group_commit import GroupCommitter
from tests.unit.polling import reactor_until


@pytest_twisted.inlineCallbacks
def test_writes_arriving_during_a_commit_share_the_next_one():
    gate = threading.Event()
    batches: list[list[int]] = []

    def flush(items):
        gate.wait(5)  # the first batch holds the writer while the rest queue up
        batches.append(list(items))
        return [i * 10 for i in items]

    committer = GroupCommitter(reactor, flush, name="test")
    committer.startService()
    try:
        first = committer.submit(0)
        yield deferLater(reactor, 0, lambda: None)  # the writer starts at the end of the turn
        ds = [first, *(committer.submit(i) for i in range(1, 5))]
        gate.set()
        results = yield DeferredList(ds, fireOnOneErrback=True)
    finally:
        yield committer.stopService()
    assert [value for _, value in results] == [0, 10, 20, 30, 40]
    assert batches == [[0], [1, 2, 3, 4]]
    assert committer.batches == 2


@pytest_twisted.inlineCallbacks
def test_writes_made_in_one_reactor_turn_share_one_commit():
    batches: list[list[int]] = []
    committer = GroupCommitter(reactor, lambda items: (batches.append(list(items)), items)[1], name="test")
    committer.startService()
    try:
        yield DeferredList([committer.submit(i) for i in range(3)], fireOnOneErrback=True)
        yield committer.submit_all([3, 4])
    finally:
        yield committer.stopService()
    assert batches == [[0, 1, 2], [3, 4]]


def gated_committer() -> tuple[GroupCommitter, threading.Event, list[list[int]]]:
    """A committer whose writer holds each batch until the gate is set, and the batches written."""
    gate = threading.Event()
    batches: list[list[int]] = []

    def flush(items):
        gate.wait(5)
        batches.append(list(items))
        return list(items)

    return GroupCommitter(reactor, flush, name="test"), gate, batches


@pytest_twisted.inlineCallbacks
def test_what_the_owner_held_back_is_gathered_as_each_batch_starts():
    committer, gate, batches = gated_committer()
    held: list[int] = []
    gathered: list[Any] = []

    def gather():
        if held:
            gathered.append(committer.submit_all(list(held)))
            held.clear()

    committer.gather = gather
    with pytest.raises(RuntimeError):
        committer.wake()  # not running yet
    committer.startService()
    try:
        held += [0, 1]
        committer.wake()
        assert batches == [] and gathered == [], "taken at the end of the turn, not at once"
        yield deferLater(reactor, 0, lambda: None)
        held += [2, 3]  # arrive while the first batch holds the writer
        committer.wake()
        yield deferLater(reactor, 0, lambda: None)
        assert len(gathered) == 1, "the writer is busy: nothing is taken yet"
        gate.set()
        first = yield gathered[0]
        yield reactor_until(lambda: len(gathered) == 2)  # the next batch starts once the first is done
        assert len(gathered) == 2
        second = yield gathered[1]
    finally:
        yield committer.stopService()
    assert batches == [[0, 1], [2, 3]] and (first, second) == (1, 3)


@pytest_twisted.inlineCallbacks
def test_stopping_writes_what_was_submitted_this_turn():
    written: list[int] = []
    committer = GroupCommitter(reactor, lambda items: (written.extend(items), items)[1], name="test")
    committer.startService()
    d = committer.submit(7)
    yield committer.stopService()
    assert written == [7]
    assert (yield d) == 7


@pytest_twisted.inlineCallbacks
def test_stopping_writes_everything_queued_behind_the_batch_on_the_writer():
    committer, gate, batches = gated_committer()
    committer.startService()
    first = committer.submit(0)
    yield deferLater(reactor, 0, lambda: None)  # the writer holds [0]
    queued = committer.submit_all([1, 2])
    stopped = committer.stopService()
    with pytest.raises(RuntimeError):
        committer.submit(3)  # stopping: nothing new is taken
    assert not stopped.called
    gate.set()
    yield stopped
    assert batches == [[0], [1, 2]] and first.called and (yield queued) == 2


@pytest_twisted.inlineCallbacks
def test_a_barrier_waits_for_everything_submitted_before_it():
    gate = threading.Event()
    committer = GroupCommitter(reactor, lambda items: (gate.wait(5), list(items))[1], name="test")
    committer.startService()
    try:
        done = [committer.submit(i) for i in range(3)]
        barrier = committer.barrier()
        later = committer.submit(3)
        assert not barrier.called
        gate.set()
        yield barrier
        assert all(d.called for d in done)
        yield later
        assert (yield committer.barrier()) is None
    finally:
        yield committer.stopService()


@pytest_twisted.inlineCallbacks
def test_after_a_failed_batch_nothing_is_ever_confirmed_again():
    gate = threading.Event()
    calls = []

    def flush(items):
        calls.append(list(items))
        gate.wait(5)
        raise OSError("disk full")

    broken = []
    committer = GroupCommitter(reactor, flush, name="test", broken=broken.append)
    committer.startService()
    try:
        first = committer.submit("a")
        yield deferLater(reactor, 0, lambda: None)  # the writer starts at the end of the turn
        queued = committer.submit("b")  # waits behind the failing batch
        barrier = committer.barrier()
        gate.set()
        for d in (first, queued, barrier, committer.submit("c"), committer.barrier()):
            with pytest.raises(OSError):
                yield d
        assert calls == [["a"]]
        assert [f.getErrorMessage() for f in broken] == ["disk full"], "told once, of the first failure"
    finally:
        yield committer.stopService()


def test_submitting_to_a_stopped_writer_is_refused():
    committer = GroupCommitter(reactor, lambda items: items, name="test")
    with pytest.raises(RuntimeError):
        committer.submit(1)


@pytest_twisted.inlineCallbacks
def test_each_batch_is_told_with_its_size_and_time_on_the_writer():
    told: list[tuple[int, float]] = []
    committer = GroupCommitter(reactor, lambda items: items, name="test")
    committer.on_batch = lambda size, seconds: told.append((size, seconds))
    committer.startService()
    try:
        yield DeferredList([committer.submit(i) for i in range(3)], fireOnOneErrback=True)
        yield committer.submit(3)
    finally:
        yield committer.stopService()
    assert [size for size, _ in told] == [3, 1]
    assert all(0 <= seconds < 5 for _, seconds in told)


@pytest_twisted.inlineCallbacks
def test_a_failing_batch_hook_does_not_stop_the_answers():
    committer = GroupCommitter(reactor, lambda items: items, name="test")
    committer.on_batch = lambda size, seconds: 1 / 0
    committer.startService()
    try:
        assert (yield committer.submit(5)) == 5
        assert (yield committer.submit(6)) == 6
    finally:
        yield committer.stopService()


@pytest_twisted.inlineCallbacks
def test_the_writer_thread_never_keeps_the_process_alive_and_stopping_still_drains_it():
    gate = threading.Event()
    written: list[int] = []

    def flush(items):
        gate.wait(5)
        written.extend(items)
        return items

    committer = GroupCommitter(reactor, flush, name="daemon-test")
    committer.startService()
    stopped = None
    try:
        writers = [t for t in threading.enumerate() if "daemon-test-writer" in t.name]
        # A process whose start failed after this (its port taken) exits instead of hanging.
        assert writers and all(t.daemon for t in writers)
        done = committer.submit(7)
        yield deferLater(reactor, 0, lambda: None)  # the batch is on the writer
        stopped = committer.stopService()
        assert not written and not done.called, "nothing acknowledged before it is written"
    finally:
        gate.set()
        yield stopped if stopped is not None else committer.stopService()
    assert written == [7] and (yield done) == 7
    assert not any(t.is_alive() for t in writers)
