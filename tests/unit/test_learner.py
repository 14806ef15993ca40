"""The catalog's apply rule: committed trades, each exactly once, in transaction-number order."""

from __future__ import annotations

import random

from bazaar.core.learner import CommittedTrade, Learned, Progress, learn
from bazaar.core.stock import Stock, TradeCheck, apply_trade

INITIAL = {s.name: s for s in (Stock("tesla", 183.26, 10, 0), Stock("ford", 11.93, 4, 5))}


def committed_log(rng: random.Random, count: int) -> list[CommittedTrade]:
    """Trades numbered 0..count-1, each valid against the table the ones before it left (as
    the leader's checks make them)."""
    table = dict(INITIAL)
    trades: list[CommittedTrade] = []
    while len(trades) < count:
        name, type_, quantity = rng.choice(list(table)), rng.choice(["buy", "sell"]), rng.randint(1, 5)
        check, after = apply_trade(table[name], type_, quantity)
        if check is TradeCheck.OK:
            table[name] = after
            trades.append(CommittedTrade(len(trades), name, type_, quantity))
    return trades


def table_after(trades: list[CommittedTrade]) -> dict[str, Stock]:
    table = dict(INITIAL)
    for t in trades:
        table[t.name] = apply_trade(table[t.name], t.type, t.quantity)[1]
    return table


LOG = [
    CommittedTrade(0, "tesla", "buy", 3),
    CommittedTrade(1, "ford", "sell", 2),
    CommittedTrade(2, "tesla", "buy", 7),
    CommittedTrade(3, "ford", "buy", 6),
]


def test_trades_are_applied_in_number_order() -> None:
    learned = learn(INITIAL, -1, LOG[:3])
    assert learned.progress is Progress.OK and learned.applied == 2
    assert learned.changed == {"tesla": Stock("tesla", 183.26, 0, 10), "ford": Stock("ford", 11.93, 6, 7)}
    assert INITIAL["tesla"].quantity == 10, "the table given is not modified"


def test_trades_already_applied_are_skipped() -> None:
    table = table_after(LOG[:2])
    learned = learn(table, 1, LOG[:3])  # a resend of 0 and 1 with 2 after them
    assert learned.progress is Progress.OK and learned.applied == 2
    assert learned.changed == {"tesla": Stock("tesla", 183.26, 0, 10)}
    again = learn(table_after(LOG[:3]), 2, LOG[:3])
    assert again == Learned({}, 2, Progress.OK)


def test_a_trade_beyond_the_next_one_is_a_gap_and_changes_nothing() -> None:
    learned = learn(INITIAL, -1, LOG[1:3])
    assert (learned.changed, learned.applied, learned.progress) == ({}, -1, Progress.GAP)


def test_a_gap_inside_a_batch_keeps_what_came_before_it() -> None:
    learned = learn(INITIAL, -1, [LOG[0], LOG[2], LOG[3]])
    assert learned.progress is Progress.GAP and learned.applied == 0
    assert learned.changed == {"tesla": Stock("tesla", 183.26, 7, 3)}


def test_a_trade_that_does_not_fit_the_table_stops_the_batch_unapplied() -> None:
    # Buying 6 ford when 4 are held: the leader checked it against another table.
    learned = learn(INITIAL, -1, [LOG[0], CommittedTrade(1, "ford", "buy", 6), CommittedTrade(2, "tesla", "sell", 1)])
    assert learned.progress is Progress.INCONSISTENT and learned.applied == 0
    assert learned.changed == {"tesla": Stock("tesla", 183.26, 7, 3)}


def test_unknown_stocks_and_types_are_inconsistent_too() -> None:
    for bad in (CommittedTrade(0, "nope", "buy", 1), CommittedTrade(0, "ford", None, 1),
                CommittedTrade(0, "ford", "sell", 0)):
        assert learn(INITIAL, -1, [bad]) == Learned({}, -1, Progress.INCONSISTENT)


def test_an_empty_batch_reports_how_far_it_has_applied() -> None:
    learned = learn(INITIAL, 5, [])
    assert (learned.changed, learned.applied, learned.progress) == ({}, 5, Progress.OK)


def test_the_table_always_equals_the_initial_one_plus_the_trades_applied() -> None:
    """Batches as leaders send them (resends, late ones, ones starting too far on, holes),
    in any order: the table is always the initial one plus trades 0..applied, and once every
    trade has been offered in order the catalog has them all."""
    rng = random.Random(20240508)
    for _ in range(200):
        log = committed_log(rng, rng.randint(1, 25))
        table, applied = dict(INITIAL), -1
        for _ in range(rng.randint(1, 30)):
            start = rng.randint(0, min(len(log) - 1, applied + 3))
            batch = log[start:start + rng.randint(0, 6)]
            if len(batch) > 2 and rng.random() < 0.2:
                del batch[rng.randrange(1, len(batch) - 1)]  # a hole
            learned = learn(table, applied, batch)
            assert learned.applied >= applied
            if start <= applied + 1 and batch == log[start:start + len(batch)]:
                assert learned.progress is Progress.OK
                assert learned.applied == max(applied, start + len(batch) - 1)
            else:
                assert learned.progress is not Progress.INCONSISTENT
            table.update(learned.changed)
            applied = learned.applied
            assert table == table_after(log[:applied + 1])
        final = learn(table, applied, log)
        table.update(final.changed)
        assert final.progress is Progress.OK and final.applied == len(log) - 1
        assert table == table_after(log)
