"""What the leader sends one follower (FollowerFeed): entries it lacks, heartbeats when due
(the commit point rides on both), and only heartbeats while it reads the leader's log on a
rejoin stream."""

from __future__ import annotations

import pytest

from bazaar.core.chain import GENESIS, Entry, Kind, Record, chained
from bazaar.core.replication import Replication
from bazaar.order.feeds import BATCH_LIMIT, FOLLOWER_SPACING, FollowerFeed, not_counted_on
from bazaar.order.links import Later
from bazaar.v1 import order_pb2

FOLLOWER = "127.0.0.1:2"


class Leader:
    """The leader as the feed sees it, over a log of `n` trades."""

    epoch = 1
    replica_id = 1

    def __init__(self, n: int) -> None:
        self.log: list[Entry] = chained(
            [Record(i, 1, Kind.TRADE, i, "tesla", "buy", 1, f"k{i}") for i in range(n)])
        self.replication = Replication()
        self.replication.assign([FOLLOWER], self.last_index)
        self.streaming_until = -1.0
        self.clock = 0.0
        self.slow: set[str] = set()

    def now(self) -> float:
        return self.clock

    @property
    def last_index(self) -> int:
        return len(self.log) - 1

    committed = -1

    @property
    def committed_index(self) -> int:
        return self.committed

    def chain_at(self, index: int) -> bytes:
        return GENESIS if index < 0 else self.log[index].chain

    def entries_in(self, indexes: range) -> list[Entry]:
        return self.log[indexes.start:indexes.stop]

    def follower_answered(self, *args: object) -> None:
        pass

    def follower_unreachable(self, address: str) -> None:
        pass

    def not_counted_on(self) -> set[str]:
        return set(self.slow)

    def is_streaming(self, address: str) -> bool:
        return address == FOLLOWER and self.clock < self.streaming_until


def test_a_follower_that_lags_gets_the_entries_it_lacks():
    leader = Leader(5)
    feed = FollowerFeed(leader, FOLLOWER)
    leader.replication.gap(FOLLOWER, 1)  # it holds entries 0 and 1
    request = feed.next_request()
    assert request.prev_index == 1 and [e.index for e in request.entries] == [2, 3, 4]


def test_the_commit_point_moving_sends_nothing_of_its_own_it_rides_on_the_next_batch_or_heartbeat():
    leader = Leader(5)
    feed = FollowerFeed(leader, FOLLOWER)
    leader.replication.matched(FOLLOWER, leader.last_index)  # it holds every entry
    leader.committed = 4
    assert feed.next_request() is None  # no call just to move the commit point
    feed.heartbeat_due = True
    heartbeat = feed.next_request()
    assert list(heartbeat.entries) == [] and heartbeat.leader_commit == 4
    leader.log = Leader(6).log  # a sixth trade came
    leader.committed = 5
    request = feed.next_request()  # entries go at once, with the commit point as it is now
    assert [e.index for e in request.entries] == [5] and request.leader_commit == 5


def test_while_it_streams_our_log_it_gets_heartbeats_only_then_entries_again():
    leader = Leader(5)
    feed = FollowerFeed(leader, FOLLOWER)
    leader.replication.gap(FOLLOWER, 1)
    leader.streaming_until = 1.0
    assert feed.next_request() is None  # no heartbeat due: nothing
    feed.heartbeat_due = True
    heartbeat = feed.next_request()
    assert list(heartbeat.entries) == [] and heartbeat.prev_index == leader.last_index
    assert heartbeat.prev_chain == leader.chain_at(leader.last_index)
    assert feed.next_request() is None
    leader.clock = 1.0  # the stream fell silent, or ended without registering it
    request = feed.next_request()
    assert [e.index for e in request.entries] == [2, 3, 4]


def test_a_follower_that_answers_gap_without_progress_is_asked_again_less_and_less_often():
    from bazaar.core.lease import LEASE
    from bazaar.order.feeds import GAP_RETRY_DELAY, GAP_RETRY_MAX
    from bazaar.v1 import order_pb2

    assert GAP_RETRY_MAX * 4 <= LEASE  # its answers renew the leader's lease: never that long a wait

    feed = FollowerFeed(Leader(5), FOLLOWER)

    def gap(last: int) -> float | None:
        return feed.answered(order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_GAP, last_index=last))

    assert gap(1) is None  # a first gap: sent again at once, from where it is
    delays = [gap(1) for _ in range(8)]  # still writing (or installing a snapshot)
    assert delays[0] == GAP_RETRY_DELAY and delays == sorted(delays) and delays[-1] == GAP_RETRY_MAX
    assert gap(3) is None  # it moved on: at once again
    assert gap(3) == GAP_RETRY_DELAY
    ok = order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_OK, last_index=4)
    assert feed.answered(ok) is None and gap(4) is None and gap(4) == GAP_RETRY_DELAY


FIRST = "127.0.0.1:1"  # before FOLLOWER in address order: the follower the leader counts on


def spared_leader(n: int) -> Leader:
    """A leader whose two followers hold its first `n` entries; FOLLOWER's just went."""
    leader = Leader(n)
    leader.replication.assign([FIRST, FOLLOWER], leader.last_index)
    for address in (FIRST, FOLLOWER):
        leader.replication.matched(address, leader.last_index)
    return leader


def sent_just_now(feed: FollowerFeed) -> None:
    feed.heartbeat_due = True
    assert feed.next_request() is not None
    feed.answered(order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_OK))


def test_a_spare_follower_gets_new_entries_once_the_spacing_since_its_last_call_has_passed():
    leader = spared_leader(5)
    feed = FollowerFeed(leader, FOLLOWER)
    sent_just_now(feed)
    leader.log = Leader(7).log  # two trades came
    leader.clock = 0.01
    later = feed.next_request()
    assert isinstance(later, Later) and later.seconds == pytest.approx(FOLLOWER_SPACING - 0.01)
    leader.replication.matched(FIRST, 6)  # the first follower took them meanwhile
    leader.clock = FOLLOWER_SPACING
    request = feed.next_request()
    assert [e.index for e in request.entries] == [5, 6]


def test_the_follower_counted_on_heartbeats_and_catching_up_are_never_held_back():
    leader = spared_leader(5)
    first, feed = FollowerFeed(leader, FIRST), FollowerFeed(leader, FOLLOWER)
    sent_just_now(first)
    sent_just_now(feed)
    leader.log = Leader(6).log
    assert [e.index for e in first.next_request().entries] == [5]
    feed.heartbeat_due = True
    assert [e.index for e in feed.next_request().entries] == [5], "a heartbeat carries the entries"
    leader.log = Leader(6 + BATCH_LIMIT).log
    assert len(feed.next_request().entries) == BATCH_LIMIT, "a full batch: it is catching up"


@pytest.mark.parametrize("why", ["slow", "unreachable", "behind"])
def test_a_spare_follower_is_fed_at_once_when_the_first_cannot_be_counted_on(why):
    leader = spared_leader(5)
    feed = FollowerFeed(leader, FOLLOWER)
    sent_just_now(feed)
    leader.log = Leader(6).log
    assert isinstance(feed.next_request(), Later)
    if why == "slow":
        leader.slow = {FIRST}
    elif why == "unreachable":
        leader.replication.unreachable(FIRST)
    else:
        leader.replication.gap(FIRST, 2)
    assert [e.index for e in feed.next_request().entries] == [5]


def test_a_call_out_counts_from_when_it_left_until_it_is_answered_or_fails():
    leader = spared_leader(5)
    feed = FollowerFeed(leader, FOLLOWER)
    assert feed.out_for(0.0) == 0.0
    feed.heartbeat_due = True
    feed.next_request()
    leader.clock = 0.3
    assert feed.out_for(leader.clock) == pytest.approx(0.3)
    feed.answered(order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_OK))
    assert feed.out_for(leader.clock) == 0.0
    feed.heartbeat_due = True
    feed.next_request()
    feed.unreachable()
    assert feed.out_for(1.0) == 0.0


def test_not_counted_on_are_the_followers_with_a_call_out_too_long_reading_a_rejoin_stream_lacking_or_refusing():
    leader = spared_leader(5)
    first, feed = FollowerFeed(leader, FIRST), FollowerFeed(leader, FOLLOWER)
    for f in (first, feed):
        f.heartbeat_due = True
        f.next_request()
    leader.clock = FOLLOWER_SPACING
    assert not_counted_on([first, feed], leader.clock, lambda address: False) == set()
    leader.clock = FOLLOWER_SPACING + 0.001
    assert not_counted_on([first, feed], leader.clock, lambda address: False) == {FIRST, FOLLOWER}
    feed.answered(order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_OK))
    assert not_counted_on([first, feed], leader.clock, lambda address: False) == {FIRST}
    assert not_counted_on([feed], leader.clock, lambda address: address == FOLLOWER) == {FOLLOWER}
    assert not_counted_on([feed], leader.clock, lambda address: False, refusing={FOLLOWER}) == {FOLLOWER}
    # A gap: it lacks entries before ours (catching up, or rejoining and holding them back).
    feed.heartbeat_due = True
    feed.next_request()
    feed.answered(order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_GAP, last_index=2))
    assert not_counted_on([feed], leader.clock, lambda address: False) == {FOLLOWER}
    feed.next_request()
    feed.answered(order_pb2.PropagateResponse(status=order_pb2.PROPAGATE_STATUS_OK, last_index=4))
    assert not_counted_on([feed], leader.clock, lambda address: False) == set()
