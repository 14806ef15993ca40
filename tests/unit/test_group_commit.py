import threading

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList

from bazaar.group_commit import GroupCommitter


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
        ds = [committer.submit(i) for i in range(5)]
        gate.set()
        results = yield DeferredList(ds, fireOnOneErrback=True)
    finally:
        yield committer.stopService()
    assert [value for _, value in results] == [0, 10, 20, 30, 40]
    assert batches == [[0], [1, 2, 3, 4]]
    assert committer.batches == 2


@pytest_twisted.inlineCallbacks
def test_a_failed_batch_fails_each_of_its_writes_and_the_next_batch_runs():
    calls = []

    def flush(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise OSError("disk full")
        return list(items)

    committer = GroupCommitter(reactor, flush, name="test")
    committer.startService()
    try:
        first = committer.submit("a")
        with pytest.raises(OSError):
            yield first
        assert (yield committer.submit("b")) == "b"
    finally:
        yield committer.stopService()


def test_submitting_to_a_stopped_writer_is_refused():
    committer = GroupCommitter(reactor, lambda items: items, name="test")
    with pytest.raises(RuntimeError):
        committer.submit(1)
