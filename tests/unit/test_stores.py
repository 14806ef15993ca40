import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bazaar.catalog.store import CatalogStore, Fence, Refusal, Trade
from bazaar.core.orders import Order
from bazaar.core.stock import TradeCheck
from bazaar.core.chain import GENESIS, Record, chained
from bazaar.order.store import Append, OrderStore, SetEpoch, StoreError, Truncate, read_orders


def order(n: int) -> Order:
    return Order(n, "ford", "sell" if n % 2 else "buy", n + 1)


def log_of(*orders: Order, prev: bytes = GENESIS, epoch: int = 1):
    return chained([Record(o, epoch) for o in orders], prev)


def test_order_numbering_and_chain_continue_after_reopening(tmp_path: Path) -> None:
    entries = log_of(order(0), order(1), order(2))
    store = OrderStore(tmp_path)
    assert (store.last_number, store.last_chain) == (-1, GENESIS)
    store.append(entries[:2])
    store.append(entries[2:])
    store.close()
    again = OrderStore(tmp_path)
    assert (again.last_number, again.last_chain) == (2, entries[2].chain)
    assert again.get(1) == order(1)
    assert again.get(3) is None
    assert again.after(0, 10) == entries[1:]
    assert again.chain(1) == entries[1].chain and again.chain(-1) == GENESIS and again.chain(5) is None


@pytest.mark.parametrize("numbers", [[1], [0, 2], [0, 0]])
def test_order_store_refuses_holes_and_rewrites(tmp_path: Path, numbers: list[int]) -> None:
    store = OrderStore(tmp_path)
    with pytest.raises(StoreError):
        store.append(log_of(*[order(n) for n in numbers]))
    assert store.last_number == -1 and list(read_orders(tmp_path)) == []


def test_truncate_and_append_in_one_transaction(tmp_path: Path) -> None:
    store = OrderStore(tmp_path)
    entries = log_of(*[order(n) for n in range(5)])
    store.append(entries)
    replacement = log_of(Order(3, "amc", "buy", 9), prev=entries[2].chain, epoch=2)
    assert store.write([Truncate(2), Append(replacement[0]), Truncate(9)]) == [2, 3, 3]
    assert [o.number for o in read_orders(tmp_path)] == [0, 1, 2, 3]
    assert store.get(3) == Order(3, "amc", "buy", 9)
    assert (store.last_number, store.last_chain) == (3, replacement[0].chain)
    assert store.write([Truncate(-1)]) == [-1]
    assert (store.last_number, store.last_chain) == (-1, GENESIS)


def test_the_epoch_is_kept_and_never_goes_back(tmp_path: Path) -> None:
    store = OrderStore(tmp_path)
    assert store.epoch == 0
    store.write([SetEpoch(4), SetEpoch(2)])
    store.close()
    again = OrderStore(tmp_path)
    assert again.epoch == 4
    again.append(log_of(order(0), epoch=4))
    assert again.entry(0).epoch == 4 and OrderStore(tmp_path).last_entry == again.entry(0)


def test_read_orders_works_beside_a_running_writer(tmp_path: Path) -> None:
    store = OrderStore(tmp_path)
    store.append(log_of(*[order(n) for n in range(25)]))
    assert list(read_orders(tmp_path, batch=7)) == [order(n) for n in range(25)]
    assert list(read_orders(tmp_path / "absent")) == []


def test_catalog_trades_commit_and_survive_reopening(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path)
    outcomes = store.apply([
        Trade("tesla", "buy", 600),
        Trade("tesla", "buy", 600),  # checked against the first one's result
        Trade("nope", "buy", 1),
        Trade("ford", "sell", 5),
    ])
    assert [o.check for o in outcomes] == [
        TradeCheck.OK, TradeCheck.NOT_ENOUGH_STOCK, TradeCheck.STOCK_NOT_FOUND, TradeCheck.OK
    ]
    assert [o.quantity for o in outcomes] == [400, 400, 0, 1005]
    store.close()
    again = CatalogStore(tmp_path)
    tesla = again.lookup("tesla")
    assert (tesla.quantity, tesla.volume) == (400, 700)
    assert again.lookup("ford").quantity == 1005
    assert again.lookup("nope") is None


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bazaar.core.chain import Record, chained
    from bazaar.core.orders import Order
    from bazaar.order.store import OrderStore
    store = OrderStore(Path(sys.argv[1]))
    n = store.last_number + 1
    while True:
        batch = [Record(Order(n + i, "amc", "buy", 1), 1) for i in range(3)]
        store.append(chained(batch, store.last_chain))
        n += 3
        print(n - 1, flush=True)
    """
)


def test_a_kill_mid_write_leaves_a_whole_prefix(tmp_path: Path) -> None:
    """SIGKILL while appending: the log reopens with every order it confirmed and no torn batch."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        confirmed = -1
        for _ in range(200):  # bounded: about 200 commits, then the kill lands mid-stream
            confirmed = int(writer.stdout.readline())
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    numbers = [o.number for o in read_orders(tmp_path)]
    assert numbers == list(range(len(numbers)))
    assert len(numbers) % 3 == 0, "a batch was torn"
    assert numbers[-1] >= confirmed
    assert OrderStore(tmp_path).last_number == numbers[-1]


def test_a_trade_id_is_applied_once_and_survives_reopening(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path)
    first = store.apply([Trade("nike", "buy", 10, "k1"), Trade("nike", "buy", 10, "k1")])
    assert [(o.check, o.quantity) for o in first] == [(TradeCheck.OK, 990), (TradeCheck.OK, 990)]
    store.close()
    again = CatalogStore(tmp_path)
    outcomes = again.apply([
        Trade("nike", "buy", 10, "k1"),  # a redo: answered as the first time, nothing moves
        Trade("nike", "sell", 10, "k1"),  # the same id for another trade
        Trade("nike", "buy", 1, ""),  # no id: never deduplicated
        Trade("nike", "buy", 1, ""),
    ])
    assert [(o.check, o.quantity) for o in outcomes] == [
        (TradeCheck.OK, 990), (Refusal.KEY_REUSED, 990), (TradeCheck.OK, 989), (TradeCheck.OK, 988)
    ]
    assert again.lookup("nike").quantity == 988 and again.lookup("nike").volume == 100 + 12


def test_a_refused_trade_is_not_recorded_under_its_id(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path)
    assert store.apply([Trade("amc", "buy", 5000, "k2")])[0].check is TradeCheck.NOT_ENOUGH_STOCK
    store.apply([Trade("amc", "sell", 5000, "")])
    assert store.apply([Trade("amc", "buy", 5000, "k2")])[0].check is TradeCheck.OK


def test_the_latest_applied_trades_are_listed_oldest_first(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path)
    store.apply([Trade("ford", "buy", 1, "a"), Trade("ford", "sell", 2, ""), Trade("amc", "sell", 3, "b")])
    store.apply([Trade("amc", "buy", 10_000, "refused"), Trade("nike", "buy", 4, "c")])
    listed = store.applied_last(10)
    assert [row[1:] for row in listed] == [("a", "ford", "buy", 1), ("b", "amc", "sell", 3), ("c", "nike", "buy", 4)]
    assert [row[1] for row in store.applied_last(2)] == ["b", "c"]


def test_a_fence_refuses_older_leaders_and_survives_reopening(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path)
    outcomes = store.apply([
        Trade("ford", "buy", 1, "a", epoch=2),
        Fence(3),
        Trade("ford", "buy", 1, "b", epoch=2),  # the replaced leader of epoch 2
        Trade("ford", "buy", 1, "c", epoch=0),  # not from a leader: never refused
    ])
    assert [o.check if o else None for o in outcomes] == [TradeCheck.OK, None, Refusal.STALE_EPOCH, TradeCheck.OK]
    store.close()
    again = CatalogStore(tmp_path)
    assert again.epoch == 3 and again.lookup("ford").quantity == 998
    assert again.apply([Trade("ford", "sell", 1, "d", epoch=2)])[0].check is Refusal.STALE_EPOCH
    assert again.apply([Trade("ford", "sell", 1, "e", epoch=4)])[0].check is TradeCheck.OK
    assert again.epoch == 4


def test_finding_a_key_uses_the_index_not_a_scan(tmp_path: Path) -> None:
    # A scan costs milliseconds at 100k orders, on every keyed trade.
    from bazaar.order.store import FIND_KEY

    store = OrderStore(tmp_path)
    plan = store._writer.execute("EXPLAIN QUERY PLAN " + FIND_KEY, ("k",)).fetchall()
    assert any("USING INDEX orders_by_key" in str(row) for row in plan), plan
    store.close()
