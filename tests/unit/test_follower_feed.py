"""What the leader sends one follower (FollowerFeed): entries it lacks, heartbeats when due
(the commit point rides on both), and only heartbeats while it reads the leader's log on a
rejoin stream."""

from __future__ import annotations

from bazaar.core.chain import GENESIS, Entry, Kind, Record, chained
from bazaar.core.replication import Replication
from bazaar.order.feeds import FollowerFeed

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
