"""Snapshots on disk: the leader's committed copy, and a far-behind replica's install of it."""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from pathlib import Path

from bazaar.core.chain import Kind
from bazaar.order.snapshot import Received, check_snapshot_file
from bazaar.order.store import (
    Append, Install, OrderStore, SetEpoch, read_entries, schema_of, snapshot_chain,
)
from tests.unit.test_replica_core import log_of
from tests.unit.test_stores import STOCKS, TABLE, trades


def verdict(passed: bool) -> Future:
    future: Future = Future()
    future.set_result(passed)
    return future


def leader_log(tmp_path: Path, count: int = 20) -> tuple[OrderStore, list]:
    store = OrderStore(tmp_path / "leader", TABLE)
    entries = log_of((Kind.LEADER,), epoch=2) + []
    entries += trades(count, after=entries[-1], epoch=2)
    store.append(entries)
    return store, entries


def test_a_committed_copy_holds_the_log_through_the_point_asked_and_nothing_beside_it(tmp_path: Path) -> None:
    store, entries = leader_log(tmp_path)
    with store.committed_copy(12) as copy:
        assert (copy.last_index, copy.last_chain) == (12, entries[12].chain)
        assert copy.size == copy.path.stat().st_size
        assert [e.path.name for e in [copy]] == [copy.path.name] and copy.path.parent == store.path.parent
        # A file of its own: no write-ahead log beside it, readable as a log.
        assert not Path(f"{copy.path}-wal").exists()
        assert list(read_entries_of(copy.path)) == entries[:13]
        conn = sqlite3.connect(copy.path)
        assert schema_of(conn) == schema_of(None)
        conn.close()
        path = copy.path
    assert not path.exists(), "the copy is removed once sent"


def read_entries_of(path: Path):
    folder = path.parent / "read"
    folder.mkdir(exist_ok=True)
    (folder / OrderStore.FILENAME).write_bytes(path.read_bytes())
    return read_entries(folder)


def test_a_copy_passes_its_check_and_installs_in_place_of_a_shorter_log(tmp_path: Path) -> None:
    leader, entries = leader_log(tmp_path, 10)  # trades that fit the stock table
    follower = OrderStore(tmp_path / "follower", TABLE)
    follower.append(entries[:5])
    with leader.committed_copy(8) as copy:
        checked = check_snapshot_file(Received(copy.path, 8, copy.last_chain, 2), STOCKS)
        assert checked.last == entries[8]
        results = follower.write([Install(copy.path, 4, 8, 2, verdict(True)), Append(entries[9])])
    assert results == [8, 9]
    assert list(read_entries(tmp_path / "follower")) == entries[:10]
    assert (follower.epoch, follower.floor, follower.committed) == (2, 2, 8)
    reopened = OrderStore(tmp_path / "follower", TABLE)  # and so it starts again
    assert (reopened.last_entry, reopened.epoch, reopened.floor, reopened.committed) == (entries[9], 2, 2, 8)


def test_an_install_whose_check_fails_changes_nothing_and_the_rest_of_the_write_goes_ahead(tmp_path: Path) -> None:
    leader, entries = leader_log(tmp_path)
    follower = OrderStore(tmp_path / "follower", TABLE)
    follower.append(entries[:5])
    with leader.committed_copy(15) as copy:
        results = follower.write([SetEpoch(3), Install(copy.path, 4, 15, 2, verdict(False)), Append(entries[5])])
    assert results == [4, 4, 5]
    assert list(read_entries(tmp_path / "follower")) == entries[:6]
    assert (follower.epoch, follower.committed) == (3, -1)


def test_an_install_whose_rows_hold_a_key_the_log_holds_changes_nothing(tmp_path: Path) -> None:
    leader, entries = leader_log(tmp_path)
    follower = OrderStore(tmp_path / "follower", TABLE)
    # Our entry 3 differs from the leader's but carries the key of its entry 10.
    mine = log_of((Kind.TRADE, "ford", "sell", 1), epoch=1, after=entries[2])
    mine = [type(mine[0])(*[getattr(mine[0], f) for f in ("index", "epoch", "kind", "number", "name", "type",
                                                          "quantity")], entries[10].key, mine[0].chain)]
    follower.append(entries[:3] + mine)
    with leader.committed_copy(15) as copy:
        assert follower.write([Install(copy.path, 3, 15, 2, verdict(True))]) == [3]
    assert list(read_entries(tmp_path / "follower")) == entries[:3] + mine
    assert "UNIQUE" in follower.install_refusal


def test_an_install_whose_check_fails_or_whose_file_cannot_be_attached_says_why(tmp_path: Path) -> None:
    leader, entries = leader_log(tmp_path)
    follower = OrderStore(tmp_path / "follower", TABLE)
    with leader.committed_copy(15) as copy:
        assert follower.write([Install(copy.path, -1, 15, 2, verdict(False))]) == [-1]
        assert follower.install_refusal == "it did not pass its check"
        assert follower.write([Install(copy.path, -1, 15, 2, verdict(True))]) == [15]
        assert follower.install_refusal is None
    utf16 = tmp_path / "utf16.sqlite3"
    conn = sqlite3.connect(utf16)
    conn.execute("PRAGMA encoding = 'UTF-16'")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    other = OrderStore(tmp_path / "other", TABLE)
    assert other.write([Install(utf16, -1, 15, 2, verdict(True)), Append(entries[0])]) == [-1, 0]
    assert "cannot be attached" in other.install_refusal

def test_an_install_replaces_a_tail_that_differs_from_the_leaders(tmp_path: Path) -> None:
    leader, entries = leader_log(tmp_path)
    follower = OrderStore(tmp_path / "follower", TABLE)
    follower.append(entries[:4] + log_of((Kind.TRADE, "ford", "sell", 1), epoch=1, after=entries[3], tag="old"))
    with leader.committed_copy(15) as copy:
        assert follower.write([Install(copy.path, 3, 15, 2, verdict(True))]) == [15]
    assert list(read_entries(tmp_path / "follower")) == entries[:16]


def test_snapshot_files_a_dead_process_left_are_removed_when_the_store_opens(tmp_path: Path) -> None:
    OrderStore(tmp_path, TABLE).close()
    left = [tmp_path / "snapshot-1.sqlite3", tmp_path / "received-2.sqlite3", tmp_path / "received-2.sqlite3-journal"]
    for path in left:
        path.write_bytes(b"partial")
    kept = tmp_path / "notes.txt"
    kept.write_text("mine")
    OrderStore(tmp_path, TABLE).close()
    assert not any(p.exists() for p in left)
    assert kept.exists()


def test_snapshot_chain_reads_one_entrys_chain_value(tmp_path: Path) -> None:
    store, entries = leader_log(tmp_path)
    assert snapshot_chain(store.path, 7) == entries[7].chain
    assert snapshot_chain(store.path, 100) is None
    assert snapshot_chain(store.path, -1) == bytes(16)
