import pytest

from bazaar.core.orders import Order
from bazaar.core.replica import Accepted, Gap, NotLeader, ReplicaCore, Role


def orders(*numbers: int) -> list[Order]:
    return [Order(n, "tesla", "buy", n + 1) for n in numbers]


def test_numbering_starts_after_the_log_and_has_no_holes() -> None:
    core = ReplicaCore(last_durable=4)
    core.lead()
    assert [core.number("ford", "sell", 3).number for _ in range(3)] == [5, 6, 7]
    assert core.last_accepted == 7 and core.last_durable == 4


def test_an_empty_log_numbers_from_zero() -> None:
    core = ReplicaCore(last_durable=-1)
    core.lead()
    assert core.number("amc", "buy", 1) == Order(0, "amc", "buy", 1)


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
    core = ReplicaCore(last_durable=1)
    assert core.accept(orders(2, 3)) == Accepted(orders(2, 3))
    assert core.last_accepted == 3


def test_accept_skips_what_it_already_holds() -> None:
    core = ReplicaCore(last_durable=3)
    assert core.accept(orders(2, 3, 4, 5)) == Accepted(orders(4, 5))
    assert core.accept(orders(0, 1)) == Accepted([])
    assert core.last_accepted == 5


@pytest.mark.parametrize("batch", [(5, 6), (3, 5), (3, 4, 6), (4, 3)])
def test_accept_refuses_a_hole_and_changes_nothing(batch: tuple[int, ...]) -> None:
    core = ReplicaCore(last_durable=2)
    assert core.accept(orders(*batch)) == Gap(2)
    assert core.last_accepted == 2


def test_durable_never_moves_back() -> None:
    core = ReplicaCore(last_durable=-1)
    core.accept(orders(0, 1, 2))
    core.durable(2)
    core.durable(1)
    assert core.last_durable == 2
