import pytest

from bazaar.core.chain import GENESIS, chained, checkpoint_numbers, link
from bazaar.core.orders import Order
from bazaar.core.replica import Accepted, Conflict, Gap, MalformedBatch, NotLeader, ReplicaCore, Role


def orders(*numbers: int, name: str = "tesla") -> list[Order]:
    return [Order(n, name, "buy", n + 1) for n in numbers]


class Log:
    """A follower's log as a list of entries, with the core that guards it."""

    def __init__(self, held: list[Order]) -> None:
        self.entries = chained(held)
        last = self.entries[-1] if self.entries else None
        self.core = ReplicaCore(last.number if last else -1, last.chain if last else GENESIS)

    def chain_at(self, n: int) -> bytes:
        return GENESIS if n == -1 else self.entries[n].chain

    def accept(self, prev: int, batch: list[Order], leader_last: int | None = None, prev_chain=None):
        if prev_chain is None:
            prev_chain = leader_chain(batch_source(prev, batch), prev)
        outcome = self.core.accept(prev, prev_chain, batch, self.chain_at, leader_last)
        if isinstance(outcome, Accepted):
            if outcome.truncate_after is not None:
                del self.entries[outcome.truncate_after + 1:]
            self.entries += outcome.entries
        return outcome


LEADER_LOG = orders(0, 1, 2, 3, 4, 5)


def batch_source(prev, batch):
    return LEADER_LOG


def leader_chain(log: list[Order], n: int) -> bytes:
    return GENESIS if n == -1 else chained(log[: n + 1])[-1].chain


def test_numbering_starts_after_the_log_and_chains_each_order() -> None:
    core = ReplicaCore(last_durable=4, last_chain=b"x" * 16)
    core.lead()
    first = core.number("ford", "sell", 3)
    assert first.order == Order(5, "ford", "sell", 3)
    assert first.chain == link(b"x" * 16, first.order)
    assert [core.number("ford", "sell", 3).number for _ in range(2)] == [6, 7]
    assert core.last_accepted == 7 and core.last_durable == 4


def test_a_follower_does_not_number_orders() -> None:
    core = ReplicaCore(last_durable=-1)
    assert core.role is Role.FOLLOWER
    with pytest.raises(NotLeader):
        core.number("amc", "buy", 1)
    core.lead()
    core.follow()
    with pytest.raises(NotLeader):
        core.number("amc", "buy", 1)


def test_accept_takes_the_next_orders() -> None:
    log = Log(LEADER_LOG[:2])
    outcome = log.accept(1, LEADER_LOG[2:4])
    assert isinstance(outcome, Accepted) and outcome.through == 3 and outcome.truncate_after is None
    assert [e.order for e in log.entries] == LEADER_LOG[:4]
    assert log.core.last_accepted == 3 and log.core.last_chain == leader_chain(LEADER_LOG, 3)


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
    log = Log(orders(0, 1, 2, name="ford"))
    assert log.accept(2, LEADER_LOG[3:5]) == Conflict(2)
    assert log.core.last_accepted == 2 and len(log.entries) == 3


def test_the_first_differing_order_and_all_after_it_are_replaced() -> None:
    log = Log(LEADER_LOG[:2] + orders(2, 3, 4, name="ford"))
    outcome = log.accept(1, LEADER_LOG[2:4])
    assert outcome.truncate_after == 1
    assert [e.order for e in log.entries] == LEADER_LOG[:4]
    assert log.core.last_accepted == 3


def test_a_tail_beyond_the_leaders_last_is_dropped() -> None:
    log = Log(LEADER_LOG[:3] + orders(3, 4, name="ford"))
    outcome = log.accept(2, [], leader_last=2)
    assert outcome == Accepted([], 2, truncate_after=2)
    assert [e.order for e in log.entries] == LEADER_LOG[:3]
    assert log.core.last_durable == 2


def test_without_the_leaders_last_a_longer_matching_log_is_kept() -> None:
    log = Log(LEADER_LOG[:5])
    assert log.accept(1, LEADER_LOG[2:3]).truncate_after is None
    assert len(log.entries) == 5


@pytest.mark.parametrize(
    "prev, numbers, leader_last",
    [(1, (3, 4), None), (1, (2, 2), None), (-2, (), None), (1, (2, 3), 2)],
)
def test_malformed_batches_are_refused(prev, numbers, leader_last) -> None:
    log = Log(LEADER_LOG[:2])
    with pytest.raises(MalformedBatch):
        log.core.accept(prev, GENESIS, orders(*numbers), log.chain_at, leader_last)
    assert log.core.last_accepted == 1


def test_checkpoints_are_exponentially_spaced_and_end_at_the_start() -> None:
    assert checkpoint_numbers(-1) == [-1]
    assert checkpoint_numbers(0) == [0, -1]
    assert checkpoint_numbers(10) == [10, 9, 8, 6, 2, -1]
    assert len(checkpoint_numbers(100_000)) == 19


def test_chains_depend_on_every_field_and_on_the_past() -> None:
    base = Order(0, "amc", "buy", 1)
    variants = [Order(0, "amc", "sell", 1), Order(0, "amc", "buy", 2), Order(0, "amd", "buy", 1),
                Order(1, "amc", "buy", 1)]
    assert len({link(GENESIS, o) for o in [base, *variants]}) == 5
    assert link(GENESIS, base) != link(b"\x01" * 16, base)
