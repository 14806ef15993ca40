"""A leader's snapshot is checked row by row (bazaar.core.snapshot) as a batch would be."""

from __future__ import annotations

import random
import struct

import pytest

from bazaar.core.book import StockBook
from bazaar.core.chain import GENESIS, Entry, Kind, Record, chained
from bazaar.core.snapshot import MalformedSnapshot, SnapshotCheck
from bazaar.core.stock import Stock, TradeCheck

INITIAL = (Stock("tesla", 183.26, 10, 100), Stock("ford", 11.93, 3, 0))
EPOCH = 3


def history(count: int, seed: int = 1) -> list[Entry]:
    """A log as leaders write it: leader entries, trades that fit, refusals for lack of stock."""
    rng = random.Random(seed)
    book = StockBook(INITIAL)
    records: list[Record] = []
    number, epoch = -1, 1
    while len(records) < count:
        index = len(records)
        if index == 0 or rng.random() < 0.05:
            epoch = min(EPOCH, epoch + (index > 0))
            records.append(Record(index, epoch, Kind.LEADER, number))
            continue
        name, type_, quantity = rng.choice(["tesla", "ford"]), rng.choice(["buy", "sell"]), rng.randint(1, 6)
        key = f"k{index}" if rng.random() < 0.9 else ""
        check = book.check(name, type_, quantity)
        if check is TradeCheck.OK:
            number += 1
            record = Record(index, epoch, Kind.TRADE, number, name, type_, quantity, key)
            book.apply(record)
        else:
            record = Record(index, epoch, Kind.REFUSED, number, name, type_, quantity, key)
        records.append(record)
    return chained(records)


def rows(entries: list[Entry]) -> list[tuple]:
    return [(e.index, e.epoch, e.kind.value, e.number, e.name, e.type, e.quantity, e.key, e.chain) for e in entries]


def check(table: list[tuple], last_index: int | None = None, last_chain: bytes | None = None,
          epoch: int = EPOCH, pieces: int = 3):
    last_index = table[-1][0] if last_index is None else last_index
    last_chain = table[-1][8] if last_chain is None else last_chain
    checker = SnapshotCheck(INITIAL, last_index, last_chain, epoch)
    step = max(1, len(table) // pieces)
    for start in range(0, len(table), step):  # fed in pieces, as a reader would
        checker.feed(table[start:start + step])
    return checker.finish()


def test_a_log_a_leader_wrote_passes_and_gives_its_last_entry_and_the_book_it_implies() -> None:
    entries = history(500)
    checked = check(rows(entries))
    assert checked.last == entries[-1]
    book = StockBook(INITIAL)
    for e in entries:
        book.apply(e)
    assert sorted(checked.stocks, key=lambda s: s.name) == book.stocks()
    assert checked.epoch == EPOCH


def test_every_piece_size_gives_the_same_verdict() -> None:
    table = rows(history(200))
    assert {check(table, pieces=n).last for n in (1, 2, 7, 200)} == {check(table).last}


def changed(table: list[tuple], at: int, **fields) -> list[tuple]:
    """`table` with row `at` changed (and its chain value recomputed, so only the change is wrong)."""
    names = ("index", "epoch", "kind", "number", "name", "type", "quantity", "key")
    row = dict(zip(names, table[at][:8]))
    row.update(fields)
    copy = list(table)
    records = [Record(*r[:2], Kind(r[2]), *r[3:8]) for r in copy[:at]]
    prev = chained(records)[-1].chain if records else GENESIS
    kind = Kind(row["kind"]) if row["kind"] in {k.value for k in Kind} else Kind.TRADE
    try:
        chain = chained([Record(row["index"], row["epoch"], kind, *[row[n] for n in names[3:]])], prev)[0].chain
    except (AttributeError, TypeError, UnicodeEncodeError, struct.error):  # no chain value for it
        chain = table[at][8]
    copy[at] = (*[row[n] for n in names], chain)
    return copy


def first_trade(table: list[tuple], type_: str = "buy") -> int:
    return next(i for i, r in enumerate(table) if r[2] == "trade" and r[5] == type_)


@pytest.mark.parametrize("change, why", [
    (lambda t: t[:5] + t[6:], "where entry 5 was due"),
    (lambda t: t[:1] + [(0, *t[1][1:])] + t[2:], "where entry 1 was due"),
    (lambda t: changed(t, first_trade(t), number=t[first_trade(t)][3] + 1), "is numbered"),
    (lambda t: changed(t, 3, epoch=EPOCH + 1), "epoch"),
    (lambda t: changed(t, 0, kind="other"), "no kind"),
    (lambda t: changed(t, 0, name="tesla"), "leader entry 0 carries a trade"),
    (lambda t: changed(t, first_trade(t), name="gamestop"), "not a well-formed trade"),
    (lambda t: changed(t, first_trade(t), type="hold"), "not a well-formed trade"),
    (lambda t: changed(t, first_trade(t), quantity=0), "not a well-formed trade"),
    (lambda t: changed(t, first_trade(t), key=" padded"), "not a well-formed trade"),
    (lambda t: changed(t, first_trade(t), quantity=10**6), "more than is held"),
    (lambda t: changed(t, first_trade(t), kind="refused", number=t[first_trade(t)][3] - 1), "refusal no leader logs"),
    (lambda t: changed(t, first_trade(t), index=1.0 * first_trade(t)), "wrong type"),
    (lambda t: changed(t, first_trade(t), name=b"tesla"), "wrong type"),
    (lambda t: changed(t, first_trade(t), key=b"k"), "wrong type"),
    (lambda t: changed(t, first_trade(t), quantity=2.0), "wrong type"),
    (lambda t: changed(t, 0, quantity=0.0), "wrong type"),
    (lambda t: t[:4] + [(*t[4][:8], "text")] + t[5:], "wrong type"),
    (lambda t: changed(t, first_trade(t), key="\ud800"), "not a well-formed trade"),
    (lambda t: changed(t, first_trade(t), name="tes\ud800"), "not a well-formed trade"),
    (lambda t: t[:4] + [(*t[4][:8], bytes(16))] + t[5:], "does not chain"),
])
def test_a_row_no_leader_writes_is_refused(change, why: str) -> None:
    table = rows(history(60))
    bad = change(table)
    with pytest.raises(MalformedSnapshot, match=why):
        check(bad, last_index=table[-1][0], last_chain=None if bad[-1][0] == table[-1][0] else table[-1][8])


def test_a_snapshot_that_ends_early_or_late_or_on_another_chain_value_is_refused() -> None:
    table = rows(history(60))
    with pytest.raises(MalformedSnapshot, match="ends before"):
        check(table[:-1], last_index=table[-1][0])
    with pytest.raises(MalformedSnapshot, match="beyond the announced"):
        check(table, last_index=table[-2][0], last_chain=table[-2][8])
    with pytest.raises(MalformedSnapshot, match="last chain value"):
        check(table, last_chain=bytes(16))
    with pytest.raises(MalformedSnapshot, match="ends before"):
        check([], last_index=0, last_chain=bytes(16))


@pytest.mark.parametrize("last_index, last_chain, epoch", [(-1, bytes(16), 1), (0, b"short", 1), (0, bytes(16), 0)])
def test_an_announcement_out_of_range_is_refused(last_index: int, last_chain: bytes, epoch: int) -> None:
    with pytest.raises(MalformedSnapshot):
        SnapshotCheck(INITIAL, last_index, last_chain, epoch)
