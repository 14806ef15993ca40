import pytest

from bazaar.core.chain import GENESIS, Entry, Record, chained, checkpoint_numbers, link
from bazaar.core.orders import Order
from bazaar.core.replica import (
    Accepted,
    Conflict,
    Gap,
    LogPosition,
    MalformedBatch,
    NotLeader,
    ReplicaCore,
    Role,
    Stale,
)


def records(*numbers: int, name: str = "tesla", epoch: int = 1) -> list[Record]:
    return [Record(Order(n, name, "buy", n + 1), epoch) for n in numbers]


LEADER_LOG = chained(records(0, 1, 2, 3, 4, 5))


class Log:
    """A follower's log as a list of entries, with the core that guards it."""

    def __init__(self, held: list[Record], epoch: int = 1) -> None:
        self.entries = chained(held)
        self.core = ReplicaCore(self.entries[-1] if self.entries else None, epoch)

    def accept(self, prev: int, batch: list[Record], leader_last=None, leader_epoch=None):
        prev_chain = GENESIS if prev == -1 else LEADER_LOG[prev].chain
        outcome = self.core.accept(prev, prev_chain, batch, self.entries.__getitem__, leader_last, leader_epoch)
        if isinstance(outcome, Accepted):
            if outcome.truncate_after is not None:
                del self.entries[outcome.truncate_after + 1:]
            self.entries += outcome.entries
        return outcome


def test_numbering_starts_after_the_log_and_chains_each_order_with_its_epoch() -> None:
    last = LEADER_LOG[4]
    core = ReplicaCore(last, epoch=1)
    assert core.promise(core.next_epoch())
    core.lead()
    first = core.number("ford", "sell", 3)
    assert first.order == Order(5, "ford", "sell", 3) and first.epoch == 2
    assert first.chain == link(last.chain, Record(first.order, 2))
    assert [core.number("ford", "sell", 3).number for _ in range(2)] == [6, 7]
    assert core.last_accepted == 7 and core.last_durable == 4
    assert core.position == LogPosition(2, 7)


def test_a_follower_does_not_number_orders() -> None:
    core = ReplicaCore()
    assert core.role is Role.FOLLOWER
    with pytest.raises(NotLeader):
        core.number("amc", "buy", 1)
    core.promise(1)
    core.lead()
    core.follow()
    with pytest.raises(NotLeader):
        core.number("amc", "buy", 1)


def test_an_epoch_is_promised_only_above_every_one_promised_before() -> None:
    core = ReplicaCore(LEADER_LOG[2], epoch=4)
    assert core.next_epoch() == 5 and core.next_epoch(seen=9) == 10
    assert not core.promise(4) and not core.promise(3)
    assert core.promise(6) and core.epoch == 6
    assert not core.promise(6), "one epoch, one candidate"
    core.lead()
    assert core.promise(7) and core.role is Role.FOLLOWER, "a newer candidate unseats us"


def test_logs_are_ranked_by_last_epoch_then_length() -> None:
    assert LogPosition(2, 3) > LogPosition(1, 90) > LogPosition(1, 89)


def test_accept_takes_the_next_orders() -> None:
    log = Log(LEADER_LOG[:2])
    outcome = log.accept(1, LEADER_LOG[2:4])
    assert isinstance(outcome, Accepted) and outcome.through == 3 and outcome.truncate_after is None
    assert log.entries == LEADER_LOG[:4]
    assert log.core.last_accepted == 3 and log.core.last_chain == LEADER_LOG[3].chain


def test_accept_skips_what_it_already_holds() -> None:
    log = Log(LEADER_LOG[:4])
    outcome = log.accept(1, LEADER_LOG[2:6])
    assert [e.number for e in outcome.entries] == [4, 5] and outcome.through == 5
    assert log.accept(-1, LEADER_LOG[:2]).entries == []
    assert log.core.last_accepted == 5


def test_a_batch_beyond_the_log_is_a_gap() -> None:
    log = Log(LEADER_LOG[:2])
    assert log.accept(3, LEADER_LOG[4:6]) == Gap(1)
    assert log.core.last_accepted == 1


def test_a_different_order_at_prev_is_a_conflict_and_changes_nothing() -> None:
    log = Log(records(0, 1, 2, name="ford"))
    assert log.accept(2, LEADER_LOG[3:5]) == Conflict(2)
    assert log.core.last_accepted == 2 and len(log.entries) == 3


def test_the_same_order_from_another_epoch_differs() -> None:
    log = Log(records(0, 1, 2, epoch=7))
    assert log.accept(2, LEADER_LOG[3:4]) == Conflict(2)


def test_the_first_differing_order_and_all_after_it_are_replaced() -> None:
    log = Log(LEADER_LOG[:2] + records(2, 3, 4, name="ford"))
    outcome = log.accept(1, LEADER_LOG[2:4])
    assert outcome.truncate_after == 1
    assert log.entries == LEADER_LOG[:4]
    assert log.core.last_accepted == 3


def test_a_tail_of_the_leaders_own_epoch_beyond_an_old_batch_is_kept() -> None:
    log = Log(LEADER_LOG[:5])
    outcome = log.accept(2, [], leader_last=2, leader_epoch=1)  # a late duplicate of an old batch
    assert outcome == Accepted([], 2, truncate_after=None) and len(log.entries) == 5
    assert log.accept(2, [], leader_last=2, leader_epoch=2).truncate_after == 2  # a newer leader


def test_a_tail_beyond_the_leaders_last_is_dropped() -> None:
    log = Log(LEADER_LOG[:3] + records(3, 4, name="ford"))
    outcome = log.accept(2, [], leader_last=2)
    assert outcome == Accepted([], 2, truncate_after=2)
    assert log.entries == LEADER_LOG[:3]
    assert log.core.last_durable == 2 and log.core.last_chain == LEADER_LOG[2].chain


def test_a_whole_log_from_a_dead_leader_can_be_dropped() -> None:
    log = Log(records(0, 1, name="ford"))
    assert log.accept(-1, [], leader_last=-1).truncate_after == -1
    assert log.entries == [] and log.core.last_accepted == -1 and log.core.last_chain == GENESIS


def test_without_the_leaders_last_a_longer_matching_log_is_kept() -> None:
    log = Log(LEADER_LOG[:5])
    assert log.accept(1, LEADER_LOG[2:3]).truncate_after is None
    assert len(log.entries) == 5


def test_a_leader_of_an_older_epoch_is_refused_and_a_newer_one_is_remembered() -> None:
    log = Log(LEADER_LOG[:2], epoch=3)
    assert log.accept(1, LEADER_LOG[2:3], leader_epoch=2) == Stale(3)
    assert len(log.entries) == 2
    assert isinstance(log.accept(1, LEADER_LOG[2:3], leader_epoch=5), Accepted)
    assert log.core.epoch == 5
    assert log.accept(2, [], leader_epoch=4) == Stale(5)


def test_a_leader_hearing_from_another_leader_of_its_own_epoch_refuses_it() -> None:
    log = Log(LEADER_LOG[:2], epoch=1)
    log.core.promise(2)
    log.core.lead()
    assert log.accept(1, [], leader_epoch=2) == Stale(2)
    assert log.core.is_leader
    assert isinstance(log.accept(1, [], leader_epoch=3), Accepted)
    assert log.core.role is Role.FOLLOWER


@pytest.mark.parametrize(
    "prev, numbers, leader_last",
    [(1, (3, 4), None), (1, (2, 2), None), (-2, (), None), (1, (2, 3), 2)],
)
def test_malformed_batches_are_refused(prev, numbers, leader_last) -> None:
    log = Log(LEADER_LOG[:2])
    with pytest.raises(MalformedBatch):
        log.core.accept(prev, GENESIS, records(*numbers), log.entries.__getitem__, leader_last)
    assert log.core.last_accepted == 1


def test_checkpoints_are_exponentially_spaced_and_end_at_the_start() -> None:
    assert checkpoint_numbers(-1) == [-1]
    assert checkpoint_numbers(0) == [0, -1]
    assert checkpoint_numbers(10) == [10, 9, 8, 6, 2, -1]
    assert len(checkpoint_numbers(100_000)) == 19


def test_chains_depend_on_every_field_the_epoch_and_the_past() -> None:
    base = Record(Order(0, "amc", "buy", 1), 1)
    variants = [Record(Order(0, "amc", "sell", 1), 1), Record(Order(0, "amc", "buy", 2), 1),
                Record(Order(0, "amd", "buy", 1), 1), Record(Order(1, "amc", "buy", 1), 1),
                Record(Order(0, "amc", "buy", 1), 2)]
    assert len({link(GENESIS, r) for r in [base, *variants]}) == 6
    assert link(GENESIS, base) != link(b"\x01" * 16, base)
    assert isinstance(chained([base])[0], Entry)
