"""The durable stores: a replica's order log (OrderStore, schema v2) and the catalog's stock
table (CatalogStore, v2)."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bazaar.catalog.store import BatchResult, CatalogStore, read_applied, read_stocks
from bazaar.catalog.store import StoreError as CatalogStoreError
from bazaar.core.chain import GENESIS, Entry, Kind, Record, chained
from bazaar.core.learner import CommittedTrade, Progress
from bazaar.core.orders import Order
from bazaar.core.stock import Stock, table_id
from bazaar.order.store import (
    FIND_KEY,
    FIND_NUMBER,
    TRADES_AFTER,
    Append,
    OrderStore,
    SetCommitted,
    SetEpoch,
    StoreError,
    Truncate,
    read_entries,
    read_orders,
)
from tests.unit.test_replica_core import log_of

STOCKS = (Stock("tesla", 183.26, 10, 100), Stock("ford", 11.93, 5, 0), Stock("amc", 4.78, 0, 0))
TABLE = table_id(STOCKS)


def trades(count: int, after: Entry | None = None, epoch: int = 1) -> list[Entry]:
    return log_of(*[(Kind.TRADE, "ford", "sell" if n % 2 else "buy", n + 1) for n in range(count)],
                  epoch=epoch, after=after)


# Leader entry, three trades, a refusal and a fourth trade.
MIXED = log_of(
    (Kind.LEADER,),
    (Kind.TRADE, "tesla", "buy", 4),  # number 0
    (Kind.TRADE, "ford", "sell", 2),  # 1
    (Kind.REFUSED, "amc", "buy", 9),  # keeps 1
    (Kind.TRADE, "tesla", "sell", 1),  # 2
    (Kind.TRADE, "tesla", "buy", 6),  # 3
)


# ---- the order log ----------------------------------------------------------------------------


def test_entries_and_their_chain_continue_after_reopening(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    assert (store.last_index, store.last_entry, store.epoch, store.committed) == (-1, None, 0, -1)
    store.append(MIXED[:2])
    store.append(MIXED[2:])
    store.close()
    again = OrderStore(tmp_path, TABLE)
    assert again.last_index == 5 and again.last_entry == MIXED[5]
    assert again.entry(3) == MIXED[3] and again.entry(6) is None
    assert again.after(1, 10) == MIXED[2:] and again.after(1, 2) == MIXED[2:4]
    assert again.chain(1) == MIXED[1].chain and again.chain(-1) == GENESIS and again.chain(6) is None


@pytest.mark.parametrize("indexes", [[1], [0, 2], [0, 0]])
def test_the_order_log_refuses_holes_and_rewrites(tmp_path: Path, indexes: list[int]) -> None:
    store = OrderStore(tmp_path, TABLE)
    entries = [Entry(i, 1, Kind.LEADER, -1) for i in indexes]
    with pytest.raises(StoreError):
        store.append(entries)
    assert store.last_index == -1 and list(read_entries(tmp_path)) == []
    store.append(MIXED[:1])  # the failed write left nothing behind
    assert store.last_entry == MIXED[0]


def test_a_key_is_in_the_log_at_most_once(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    again = Record(6, 1, Kind.TRADE, 4, "ford", "buy", 1, MIXED[2].key)
    with pytest.raises(sqlite3.IntegrityError):
        store.append(chained([again], MIXED[5].chain))
    assert store.last_index == 5 and store.find_key(MIXED[2].key) == MIXED[2]


def test_truncate_and_append_in_one_transaction(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    replacement = log_of((Kind.TRADE, "amc", "sell", 9), epoch=2, after=MIXED[2], tag="new")
    assert store.write([Truncate(2), Append(replacement[0]), Truncate(9)]) == [2, 3, 3]
    assert list(read_entries(tmp_path)) == MIXED[:3] + replacement
    assert store.by_number(2) == replacement[0] and store.by_number(3) is None
    assert store.last_entry == replacement[0]
    assert store.write([Truncate(-1)]) == [-1]
    assert (store.last_index, store.last_entry) == (-1, None)
    assert OrderStore(tmp_path, TABLE).last_index == -1


def test_a_snapshot_reads_one_log_while_the_writer_replaces_its_tail(tmp_path: Path) -> None:
    """A stream read in batches from a snapshot never splices the old log with the new one."""
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    replacement = log_of((Kind.TRADE, "amc", "sell", 9), (Kind.TRADE, "amc", "sell", 1), (Kind.TRADE, "amc", "buy", 2),
                         epoch=2, after=MIXED[2], tag="new")
    with store.snapshot() as snapshot:
        assert snapshot.after(-1, 3) == MIXED[:3]
        store.write([Truncate(2), *(Append(e) for e in replacement)])
        assert snapshot.after(2, 10) == MIXED[3:]
        assert snapshot.last_index == 5 and snapshot.chain(5) == MIXED[5].chain
    with store.snapshot() as snapshot:
        assert snapshot.after(2, 10) == replacement


def test_a_failed_write_rolls_back_all_of_it(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED[:3])
    with pytest.raises(StoreError):
        store.write([Truncate(0), SetEpoch(5), SetCommitted(0), Append(MIXED[4])])  # 4 does not follow 0
    assert (store.last_entry, store.epoch, store.committed) == (MIXED[2], 0, -1)
    store.close()
    again = OrderStore(tmp_path, TABLE)
    assert list(read_entries(tmp_path)) == MIXED[:3] and (again.epoch, again.committed) == (0, -1)


def test_the_epoch_is_kept_and_never_goes_back(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.write([SetEpoch(4), SetEpoch(2)])
    assert store.epoch == 4
    store.close()
    again = OrderStore(tmp_path, TABLE)
    assert again.epoch == 4
    again.append(log_of((Kind.LEADER,), epoch=4))
    assert again.entry(0).epoch == 4 and OrderStore(tmp_path, TABLE).last_entry == again.entry(0)


def test_the_commit_point_is_kept_and_never_goes_back(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    assert store.write([Append(MIXED[0]), Append(MIXED[1]), SetCommitted(1), SetCommitted(0)]) == [0, 1, 1, 1]
    assert store.committed == 1
    store.close()
    again = OrderStore(tmp_path, TABLE)
    assert again.committed == 1
    again.write([SetCommitted(0)])
    assert OrderStore(tmp_path, TABLE).committed == 1


def test_trades_are_found_by_number_and_other_entries_are_not(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    # The refusal at index 3 carries number 1 too (the latest before it), as does trade 1.
    assert [store.by_number(n) for n in (0, 1, 2, 3)] == [MIXED[1], MIXED[2], MIXED[4], MIXED[5]]
    assert store.by_number(-1) is None and store.by_number(4) is None


def test_keys_find_entries_of_every_kind_and_the_empty_key_finds_nothing(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    assert store.find_key(MIXED[3].key) == MIXED[3]  # a refusal keeps its key
    assert store.find_key(MIXED[1].key) == MIXED[1]
    assert store.find_key("") is None and store.find_key("absent") is None


def test_trades_after_a_number_come_in_number_order_and_skip_other_entries(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    assert store.trades_after(-1, 10) == [MIXED[1], MIXED[2], MIXED[4], MIXED[5]]
    assert store.trades_after(0, 2) == [MIXED[2], MIXED[4]]
    assert store.trades_after(3, 10) == []


def test_stock_totals_sum_the_trades_per_stock_and_type(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    assert store.stock_totals() == []
    store.append(MIXED)
    assert sorted(store.stock_totals()) == [("ford", "sell", 2), ("tesla", "buy", 10), ("tesla", "sell", 1)]


def test_a_store_made_from_another_stock_table_is_refused(tmp_path: Path) -> None:
    OrderStore(tmp_path, TABLE).append(MIXED[:2])
    other = table_id([*STOCKS[:2], Stock("amc", 4.78, 1, 0)])
    with pytest.raises(StoreError, match="another stock table"):
        OrderStore(tmp_path, other)
    assert OrderStore(tmp_path, TABLE).last_entry == MIXED[1], "the refusal changed nothing"
    assert OrderStore(tmp_path, table_id(reversed(STOCKS))).last_index == 1, "the table's order does not matter"


def old_order_log(directory: Path) -> None:
    """An order log as the previous version wrote it: table `orders`, user_version 0."""
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / OrderStore.FILENAME)
    conn.execute("CREATE TABLE orders (number INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, "
                 "quantity INTEGER NOT NULL, epoch INTEGER NOT NULL, key TEXT NOT NULL, chain BLOB NOT NULL)")
    conn.execute("INSERT INTO orders VALUES (0, 'ford', 'buy', 1, 1, '', x'00')")
    conn.commit()
    conn.close()


def test_an_order_log_of_the_previous_format_is_refused_and_left_alone(tmp_path: Path) -> None:
    old_order_log(tmp_path)
    with pytest.raises(StoreError, match="another version"):
        OrderStore(tmp_path, TABLE)
    with pytest.raises(StoreError, match="another version"):
        list(read_entries(tmp_path))
    conn = sqlite3.connect(tmp_path / OrderStore.FILENAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["orders"]
    conn.close()


def test_read_entries_and_orders_work_beside_a_running_writer(tmp_path: Path) -> None:
    store = OrderStore(tmp_path, TABLE)
    store.append(MIXED)
    more = trades(20, after=MIXED[-1])
    store.append(more)
    assert list(read_entries(tmp_path, batch=7)) == MIXED + more
    orders = list(read_orders(tmp_path, batch=3))
    assert orders[:4] == [Order(0, "tesla", "buy", 4), Order(1, "ford", "sell", 2),
                          Order(2, "tesla", "sell", 1), Order(3, "tesla", "buy", 6)]
    assert [o.number for o in orders] == list(range(24))
    assert list(read_entries(tmp_path / "absent")) == [] and list(read_orders(tmp_path / "absent")) == []


def test_read_entries_takes_a_relative_directory(tmp_path: Path, monkeypatch) -> None:
    OrderStore(tmp_path / "order-1", TABLE).append(MIXED)
    monkeypatch.chdir(tmp_path)
    assert list(read_entries(Path("order-1"))) == MIXED


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bazaar.core.chain import Kind, Record, chained
    from bazaar.order.store import OrderStore
    store = OrderStore(Path(sys.argv[1]), sys.argv[2])
    while True:
        last = store.last_entry
        i = last.index + 1 if last else 0
        batch = [Record(i + j, 1, Kind.TRADE, i + j, "amc", "buy", 1, f"k{i + j}") for j in range(3)]
        store.append(chained(batch, last.chain if last else b"\\0" * 16))
        print(i + 2, flush=True)
    """
)


def test_a_kill_mid_write_leaves_a_whole_prefix(tmp_path: Path) -> None:
    """SIGKILL while appending: the log reopens with every entry it confirmed and no torn batch."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), TABLE], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        confirmed = -1
        for _ in range(200):  # bounded: about 200 commits, then the kill lands mid-stream
            confirmed = int(writer.stdout.readline())
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    entries = list(read_entries(tmp_path))
    assert [e.index for e in entries] == list(range(len(entries)))
    assert [e.number for e in entries] == list(range(len(entries)))
    assert len(entries) % 3 == 0, "a batch was torn"
    assert entries[-1].index >= confirmed
    assert chained([e.record() for e in entries]) == entries, "every chain value is whole"
    assert OrderStore(tmp_path, TABLE).last_entry == entries[-1]


@pytest.mark.parametrize("query, index, args", [
    (FIND_KEY, "log_by_key", ("k",)),
    (FIND_NUMBER, "log_by_number", (3,)),
    (TRADES_AFTER, "log_by_number", (3, 10)),
])
def test_lookups_use_an_index_not_a_scan(tmp_path: Path, query: str, index: str, args: tuple) -> None:
    # A scan costs milliseconds at 100k entries, on every keyed trade and every lookup.
    store = OrderStore(tmp_path, TABLE)
    plan = store._writer.execute("EXPLAIN QUERY PLAN " + query, args).fetchall()
    assert any(f"USING INDEX {index}" in str(row) for row in plan), plan
    store.close()


# ---- the catalog ------------------------------------------------------------------------------


def committed(*trades_: tuple, first: int = 0) -> list[CommittedTrade]:
    return [CommittedTrade(first + i, name, type_, quantity) for i, (name, type_, quantity) in enumerate(trades_)]


def stock(store: CatalogStore, name: str) -> tuple[int, int]:
    s = store.lookup(name)
    return s.quantity, s.volume


def test_a_new_catalog_holds_the_initial_table_and_has_applied_nothing(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path, STOCKS)
    assert store.applied == -1 and store.snapshot.applied == -1
    assert store.stocks() == sorted(STOCKS, key=lambda s: s.name)
    assert store.lookup("nope") is None
    assert sorted(read_stocks(tmp_path), key=lambda s: s.name) == store.stocks() and read_applied(tmp_path) == -1


def test_committed_trades_are_applied_in_order_and_survive_reopening(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path, STOCKS)
    results = store.apply([
        committed(("tesla", "buy", 6), ("tesla", "buy", 4)),  # the second sees the first's result
        committed(("ford", "sell", 5), first=2),
    ])
    assert results == [BatchResult(1, Progress.OK), BatchResult(2, Progress.OK)]
    assert stock(store, "tesla") == (0, 110) and stock(store, "ford") == (10, 5)
    assert read_applied(tmp_path) == 2, "visible to readers once applied"
    store.close()
    again = CatalogStore(tmp_path, STOCKS)
    assert again.applied == 2 and stock(again, "tesla") == (0, 110) and stock(again, "ford") == (10, 5)
    assert {s.name: s for s in read_stocks(tmp_path)}["tesla"] == Stock("tesla", 183.26, 0, 110)


def test_a_resend_after_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    first = committed(("ford", "buy", 2), ("ford", "buy", 3))
    store = CatalogStore(tmp_path, STOCKS)
    store.apply([first])
    store.close()
    again = CatalogStore(tmp_path, STOCKS)
    results = again.apply([first, [*first, *committed(("ford", "sell", 1), first=2)]])
    assert results == [BatchResult(1, Progress.OK), BatchResult(2, Progress.OK)]
    assert stock(again, "ford") == (1, 6)


def test_a_gap_changes_nothing_and_says_how_far_it_applied(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path, STOCKS)
    store.apply([committed(("ford", "buy", 1))])
    snapshot = store.snapshot
    assert store.apply([committed(("ford", "buy", 1), first=2)]) == [BatchResult(0, Progress.GAP)]
    assert store.snapshot is snapshot and read_applied(tmp_path) == 0 and stock(store, "ford") == (4, 1)


def test_an_inconsistent_trade_stops_the_catalog_and_keeps_what_came_before(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path, STOCKS)
    results = store.apply([
        committed(("ford", "buy", 5), ("ford", "buy", 1), ("tesla", "buy", 1)),  # no ford left for 1
        committed(("tesla", "buy", 1), first=2),
    ])
    assert results == [BatchResult(0, Progress.INCONSISTENT), BatchResult(0, Progress.GAP)]
    assert stock(store, "ford") == (0, 5) and stock(store, "tesla") == (10, 100)
    store.close()
    assert CatalogStore(tmp_path, STOCKS).applied == 0 and read_applied(tmp_path) == 0


def test_a_published_snapshot_never_changes(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path, STOCKS)
    before = store.snapshot
    store.apply([committed(("tesla", "buy", 1))])
    assert before.applied == -1 and before.stocks["tesla"].quantity == 10
    assert store.snapshot.applied == 0 and store.snapshot.stocks["tesla"].quantity == 9


def test_a_catalog_made_from_another_stock_table_is_refused(tmp_path: Path) -> None:
    CatalogStore(tmp_path, STOCKS).apply([committed(("ford", "buy", 1))])
    with pytest.raises(CatalogStoreError, match="another stock table"):
        CatalogStore(tmp_path, [*STOCKS, Stock("nike", 126.13, 1, 0)])
    again = CatalogStore(tmp_path, reversed(STOCKS))  # the same table in another order
    assert again.applied == 0 and stock(again, "ford") == (4, 1)


def test_a_catalog_of_the_previous_format_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / CatalogStore.FILENAME)
    conn.execute("CREATE TABLE stocks (name TEXT PRIMARY KEY, price REAL, quantity INTEGER, volume INTEGER)")
    conn.execute("CREATE TABLE applied (trade_id TEXT PRIMARY KEY, name TEXT, type TEXT, quantity INTEGER)")
    conn.execute("INSERT INTO stocks VALUES ('ford', 11.93, 5, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogStoreError, match="another version"):
        CatalogStore(tmp_path, STOCKS)
