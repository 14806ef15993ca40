"""The replica core: numbering entries and trades, placing trades against the book, log
matching (accept), epochs and promises."""

from __future__ import annotations

from typing import Sequence

import pytest

from bazaar.core.book import StockBook
from bazaar.core.bounds import MAX_EPOCH, MAX_INDEX
from bazaar.core.chain import GENESIS, Entry, Kind, Record, chained, checkpoint_numbers, link
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
from bazaar.core.stock import Stock, TradeCheck, apply_trade
from bazaar.core.takeover import Candidacy, Promised, Refused, StandAgain, Won

INITIAL = (Stock("tesla", 183.26, 10, 0), Stock("ford", 11.93, 5, 0))

TRADE, REFUSED, LEADER = Kind.TRADE, Kind.REFUSED, Kind.LEADER


def log_of(*items: tuple, epoch: int = 1, after: Entry | None = None, tag: str = "") -> list[Entry]:
    """Entries following `after`, numbered as a leader numbers them. Each item is
    (kind, name, type, quantity); a leader entry is (LEADER,)."""
    index = after.index + 1 if after else 0
    number = after.number if after else -1
    records = []
    for kind, *trade in items:
        if kind is TRADE:
            number += 1
        name, type_, quantity = trade or ("", "", 0)
        key = f"{tag}k{epoch}-{index}" if kind is not LEADER else ""
        records.append(Record(index, epoch, kind, number, name, type_, quantity, key))
        index += 1
    return chained(records, after.chain if after else GENESIS)


# What a leader of epoch 1 logged: its leader entry, trades, and a refusal for lack of stock.
LEADER_LOG = log_of(
    (LEADER,),
    (TRADE, "tesla", "buy", 3),  # number 0
    (TRADE, "ford", "buy", 2),  # 1
    (REFUSED, "tesla", "buy", 50),  # keeps 1
    (TRADE, "tesla", "sell", 1),  # 2
    (TRADE, "ford", "buy", 3),  # 3
)


def implied(entries: list[Entry]) -> list[Stock]:
    """The stock table a log implies, worked out from the stock rules alone."""
    table = {s.name: s for s in INITIAL}
    for e in entries:
        if e.kind is TRADE:
            check, table[e.name] = apply_trade(table[e.name], e.type, e.quantity)
            assert check is TradeCheck.OK
    return sorted(table.values(), key=lambda s: s.name)


def core_over(entries: list[Entry], epoch: int = 0) -> ReplicaCore:
    """A core restarted over `entries`, its book read from them."""
    book = StockBook(INITIAL)
    for e in entries:
        book.apply(e)
    return ReplicaCore(book, entries[-1] if entries else None, epoch)


class Log:
    """A follower's log as a list of entries, with the core that guards it."""

    def __init__(self, held: list[Entry], epoch: int = 1) -> None:
        self.entries = list(held)
        self.core = core_over(self.entries, epoch)

    def accept(self, prev: int, batch: list[Record], leader_last=None, leader_epoch=None):
        prev_chain = GENESIS if prev == -1 else LEADER_LOG[prev].chain
        outcome = self.core.accept(prev, prev_chain, batch, self.entries.__getitem__, leader_last, leader_epoch,
                                   key_holder=self.key_holder)
        if isinstance(outcome, Accepted):
            if outcome.truncate_after is not None:
                del self.entries[outcome.truncate_after + 1:]
            self.entries += outcome.entries
        return outcome

    def key_holder(self, key: str) -> int | None:
        return next((e.index for e in self.entries if e.key == key), None)

    def book_is_implied(self) -> bool:
        return self.core.book.stocks() == implied(self.entries)


def leading(entries: Sequence[Entry] = (), epoch: int | None = None) -> ReplicaCore:
    core = core_over(list(entries))
    assert core.promise(epoch or core.next_epoch())
    core.lead()
    return core


# ---- numbering, as the leader -----------------------------------------------------------------


def test_a_new_leader_opens_its_epoch_with_a_leader_entry_after_the_log() -> None:
    core = core_over(LEADER_LOG[:5], epoch=1)
    assert core.promise(core.next_epoch())
    entry = core.lead()
    assert (entry.index, entry.epoch, entry.kind, entry.number) == (5, 2, LEADER, 2)
    assert entry.chain == link(LEADER_LOG[4].chain, entry.record())
    assert core.first_own == 5 and core.is_leader
    assert core.last_index == 5 and core.last_durable == 4
    assert core.position == LogPosition(2, 5)


def test_trades_take_the_next_transaction_number_and_other_entries_keep_it() -> None:
    core = leading(LEADER_LOG)  # last number 3; its leader entry is 6
    prev_chain = core.last_chain
    placed = [
        core.place("ford", "sell", 4, "a"),
        core.place("tesla", "buy", 500, "b"),  # refused for lack of stock
        core.place("ford", "buy", 1, "c"),
    ]
    assert [(e.index, e.kind, e.number, e.epoch) for e in placed] == [
        (7, TRADE, 4, 2), (8, REFUSED, 4, 2), (9, TRADE, 5, 2)
    ]
    assert placed[0].chain == link(prev_chain, placed[0].record())
    assert placed[2].chain == link(placed[1].chain, placed[2].record())
    assert core.last_number == 5
    core.follow()
    assert core.promise(core.next_epoch())
    assert core.lead().number == 5, "a leader entry keeps the number too"
    assert core.place("ford", "buy", 1, "d").number == 6


def test_place_refuses_without_logging_what_no_log_could_make_valid() -> None:
    core = leading(LEADER_LOG)
    before = (core.last_index, core.last_number, core.last_chain, core.book.stocks())
    assert core.place("nope", "buy", 1, "a") is TradeCheck.STOCK_NOT_FOUND
    assert core.place("nope", "steal", 0, "a") is TradeCheck.STOCK_NOT_FOUND
    assert core.place("ford", None, 1, "a") is TradeCheck.INVALID_TYPE
    assert core.place("ford", "buy", 0, "a") is TradeCheck.INVALID_QUANTITY
    assert (core.last_index, core.last_number, core.last_chain, core.book.stocks()) == before


def test_a_refusal_for_lack_of_stock_is_logged_and_moves_nothing() -> None:
    core = leading(LEADER_LOG)  # ford holds 0 now
    stocks = core.book.stocks()
    refused = core.place("ford", "buy", 1, "k")
    assert isinstance(refused, Entry) and refused.kind is REFUSED
    assert (refused.name, refused.type, refused.quantity, refused.key) == ("ford", "buy", 1, "k")
    assert core.book.stocks() == stocks and core.last_index == refused.index


def test_the_book_follows_what_the_leader_places() -> None:
    core = leading()
    entries: list[Entry] = []
    for name, type_, quantity in [("tesla", "buy", 10), ("tesla", "buy", 1), ("ford", "sell", 2), ("ford", "buy", 7)]:
        entries.append(core.place(name, type_, quantity, f"k{len(entries)}"))
    assert [e.kind for e in entries] == [TRADE, REFUSED, TRADE, TRADE]
    assert core.book.stocks() == implied(entries)
    assert core.book.check("ford", "buy", 1) is TradeCheck.NOT_ENOUGH_STOCK


def test_a_follower_does_not_place_trades() -> None:
    core = ReplicaCore(StockBook(INITIAL))
    assert core.role is Role.FOLLOWER
    with pytest.raises(NotLeader):
        core.place("ford", "buy", 1, "k")
    core.promise(1)
    core.lead()
    core.follow()
    assert core.first_own == -1
    with pytest.raises(NotLeader):
        core.place("ford", "buy", 1, "k")
    assert core.last_index == 0  # only the leader entry


# ---- epochs and promises ----------------------------------------------------------------------


def test_an_epoch_is_promised_only_above_every_one_promised_before() -> None:
    core = core_over(LEADER_LOG[:3], epoch=4)
    assert core.next_epoch() == 5 and core.next_epoch(seen=9) == 10
    assert not core.promise(4) and not core.promise(3)
    assert core.promise(5) and core.epoch == 5
    assert not core.promise(5), "one epoch, one candidate"
    core.lead()
    assert core.promise(6) and core.role is Role.FOLLOWER, "a newer candidate unseats us"


def test_a_promise_is_at_most_one_step_beyond_what_the_replica_has_seen() -> None:
    core = core_over(LEADER_LOG[:3], epoch=4)
    assert core.reach("c") == 5
    assert not core.promise(2**63 - 1, candidate="c") and not core.promise(MAX_EPOCH + 1, candidate="c")
    assert not core.promise(9, candidate="c"), "a candidate that stood for 9 while we lagged is refused once"
    assert core.epoch == 4 and core.floor == 4, "a refusal changes no epoch"
    assert core.reach("c") == 10 and core.reach("d") == 5, "only that candidate's next attempt may go further"
    assert core.promise(10, candidate="c") and core.epoch == 10
    assert core.reach("c") == 11, "granted, the attempt is forgotten"


def test_a_lagging_follower_promises_a_candidates_second_attempt() -> None:
    """The candidate stands at max(its epoch, the refusals it heard) + 1: the lagging follower's
    refusal reports an older epoch, so the second attempt is one above the first."""
    follower = core_over(LEADER_LOG[:3], epoch=1)
    candidate_core = core_over(LEADER_LOG[:3], epoch=7)
    candidacy = Candidacy(["f"])
    first = candidacy.stand(candidate_core)
    assert first == 8 and candidate_core.promise(first, own=True)
    assert not follower.promise(first, candidate="c")
    candidacy.answered("f", Refused(follower.epoch))
    assert candidacy.outcome(candidate_core) == StandAgain()
    second = candidacy.stand(candidate_core)
    assert second == 9 and candidate_core.promise(second, own=True)
    assert follower.promise(second, candidate="c")
    candidacy.answered("f", Promised(2))
    assert candidacy.outcome(candidate_core) == Won(None)


def test_no_epoch_beyond_the_bound_is_stood_for() -> None:
    core = core_over([], epoch=MAX_EPOCH - 1)
    candidacy = Candidacy(["f"])
    assert candidacy.stand(core) == MAX_EPOCH and core.promise(MAX_EPOCH, own=True)
    candidacy.answered("f", Refused(MAX_EPOCH))
    assert candidacy.outcome(core) == StandAgain()
    assert candidacy.stand(core) is None, "epoch + 1 would pass MAX_EPOCH"
    assert not core.promise(MAX_EPOCH + 1, own=True)


def test_a_restarted_core_knows_at_least_its_last_entrys_epoch() -> None:
    entries = log_of((LEADER,), epoch=3)
    assert core_over(entries, epoch=1).epoch == 3
    assert core_over(entries, epoch=5).epoch == 5


def test_logs_are_ranked_by_last_epoch_then_length() -> None:
    assert LogPosition(2, 3) > LogPosition(1, 90) > LogPosition(1, 89)


# ---- accept: log matching, as a follower ------------------------------------------------------


def test_accept_takes_the_next_entries() -> None:
    log = Log(LEADER_LOG[:2])
    outcome = log.accept(1, LEADER_LOG[2:4])
    assert isinstance(outcome, Accepted) and outcome.through == 3 and outcome.truncate_after is None
    assert log.entries == LEADER_LOG[:4]
    assert log.core.last_index == 3 and log.core.last_chain == LEADER_LOG[3].chain
    assert log.core.last_number == 1 and log.core.last_durable == 1
    assert log.book_is_implied()


def test_accept_skips_what_it_already_holds() -> None:
    log = Log(LEADER_LOG[:4])
    outcome = log.accept(1, [e.record() for e in LEADER_LOG[2:6]])  # records, as a leader sends
    assert outcome.entries == LEADER_LOG[4:6] and outcome.through == 5
    assert log.accept(-1, LEADER_LOG[:2]).entries == []
    assert log.core.last_index == 5 and log.book_is_implied()


def test_a_batch_beyond_the_log_is_a_gap() -> None:
    log = Log(LEADER_LOG[:2])
    assert log.accept(3, LEADER_LOG[4:6]) == Gap(1)
    assert log.core.last_index == 1


def test_a_different_entry_at_prev_is_a_conflict_and_changes_nothing() -> None:
    log = Log(log_of((LEADER,), (TRADE, "ford", "buy", 1), (TRADE, "ford", "buy", 1)))
    assert log.accept(2, LEADER_LOG[3:5]) == Conflict(2)
    assert log.core.last_index == 2 and len(log.entries) == 3 and log.book_is_implied()


def test_the_same_entry_from_another_epoch_differs() -> None:
    log = Log([*LEADER_LOG[:2], *log_of((TRADE, "ford", "buy", 2), epoch=7, after=LEADER_LOG[1])])
    assert log.accept(2, LEADER_LOG[3:4]) == Conflict(2)


def test_the_first_differing_entry_and_all_after_it_are_replaced_and_the_book_follows() -> None:
    dead_tail = log_of((TRADE, "tesla", "buy", 7), (TRADE, "ford", "sell", 9), (REFUSED, "ford", "buy", 99),
                       after=LEADER_LOG[1], tag="dead")
    log = Log(LEADER_LOG[:2] + dead_tail)
    outcome = log.accept(1, LEADER_LOG[2:4])
    assert outcome.truncate_after == 1
    assert log.entries == LEADER_LOG[:4]
    assert log.core.last_index == 3 and log.core.last_number == 1
    assert log.book_is_implied()


def test_a_truncation_lowers_what_counts_as_durable() -> None:
    log = Log(LEADER_LOG[:3] + log_of((TRADE, "ford", "sell", 4), after=LEADER_LOG[2], tag="dead"))
    log.core.durable(3)
    log.accept(2, LEADER_LOG[3:5])
    assert log.core.last_durable == 2 and log.core.last_index == 4
    log.core.durable(4)
    assert log.core.last_durable == 4


def test_a_tail_of_the_leaders_own_epoch_beyond_an_old_batch_is_kept() -> None:
    log = Log(LEADER_LOG[:5])
    outcome = log.accept(2, [], leader_last=2, leader_epoch=1)  # a late duplicate of an old batch
    assert outcome == Accepted([], 2, truncate_after=None) and len(log.entries) == 5
    assert log.accept(2, [], leader_last=2, leader_epoch=2).truncate_after == 2  # a newer leader
    assert log.entries == LEADER_LOG[:3] and log.book_is_implied()


def test_a_tail_beyond_the_leaders_last_is_dropped() -> None:
    log = Log(LEADER_LOG[:3] + log_of((TRADE, "ford", "sell", 1), (TRADE, "ford", "sell", 1),
                                      after=LEADER_LOG[2], tag="dead"))
    outcome = log.accept(2, [], leader_last=2)
    assert outcome == Accepted([], 2, truncate_after=2)
    assert log.entries == LEADER_LOG[:3]
    assert log.core.last_durable == 2 and log.core.last_chain == LEADER_LOG[2].chain
    assert log.core.last_number == 1 and log.book_is_implied()


def test_a_whole_log_from_a_dead_leader_can_be_dropped() -> None:
    log = Log(log_of((LEADER,), (TRADE, "ford", "buy", 5), tag="dead"))
    assert log.accept(-1, [], leader_last=-1).truncate_after == -1
    assert log.entries == [] and log.core.last_index == -1 and log.core.last_chain == GENESIS
    assert log.core.last_number == -1 and log.core.book.stocks() == implied([])


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


def test_a_replaced_leader_learns_so_even_when_its_batch_no_longer_fits() -> None:
    # A newer leader replaced what followed entry 1 and it is committed here: the old leader's
    # batch would replace a committed entry, but what it must hear is STALE_EPOCH (with our
    # epoch), not a malformed-batch error that teaches it nothing.
    log = Log(LEADER_LOG[:2], epoch=1)
    newer = log_of((TRADE, "tesla", "sell", 1), epoch=2, after=LEADER_LOG[1])
    assert isinstance(log.accept(1, newer, leader_epoch=2), Accepted)
    old = LEADER_LOG[2:3]
    outcome = log.core.accept(1, LEADER_LOG[1].chain, old, log.entries.__getitem__, 2, 1, keep_through=2,
                              key_holder=log.key_holder)
    assert outcome == Stale(2) and log.entries[2] == newer[0]


def test_a_leader_hearing_from_another_leader_of_its_own_epoch_refuses_it() -> None:
    log = Log(LEADER_LOG[:2], epoch=1)
    log.core.promise(2)
    log.core.lead()
    assert log.accept(1, [], leader_epoch=2) == Stale(2)
    assert log.core.is_leader
    assert isinstance(log.accept(1, [], leader_epoch=3), Accepted)
    assert log.core.role is Role.FOLLOWER and log.core.first_own == -1


def test_entries_adopted_without_a_leader_epoch_raise_the_epoch_to_theirs() -> None:
    log = Log(LEADER_LOG[:2], epoch=1)
    newer = log_of((TRADE, "tesla", "sell", 1), epoch=4, after=LEADER_LOG[1])
    log.accept(1, newer)
    assert log.core.epoch == 4 and log.core.position == LogPosition(4, 2)


def misnumbered(*numbers: int, kinds: tuple[Kind, ...] | None = None) -> list[Record]:
    """Records 2, 3, ... after LEADER_LOG[1] (number 0), with the numbers given."""
    kinds = kinds or (TRADE,) * len(numbers)
    return [Record(2 + i, 1, kind, n, "ford", "sell", 1, f"m{i}")
            for i, (kind, n) in enumerate(zip(kinds, numbers, strict=True))]


@pytest.mark.parametrize(
    "prev, batch, leader_last",
    [
        (1, [Record(3, 1, TRADE, 1, "ford", "sell", 1)], None),  # not the next index
        (1, [Record(2, 1, TRADE, 1, "ford", "sell", 1)] * 2, None),  # an index twice
        (-2, [], None),
        (1, misnumbered(1, 2), 2),  # beyond the leader's last
        (1, misnumbered(2), None),  # a trade skipping a number
        (1, misnumbered(0), None),  # a trade reusing one
        (1, misnumbered(1, 1), None),
        (1, misnumbered(1, kinds=(REFUSED,)), None),  # a refusal taking a number
        (1, misnumbered(-1, kinds=(LEADER,)), None),  # a leader entry going back
    ],
)
def test_malformed_batches_are_refused_and_change_nothing(prev, batch, leader_last) -> None:
    log = Log(LEADER_LOG[:2])
    before = (log.core.last_index, log.core.last_number, log.core.last_chain, log.core.book.stocks())
    with pytest.raises(MalformedBatch):
        log.accept(prev, batch, leader_last)
    assert (log.core.last_index, log.core.last_number, log.core.last_chain, log.core.book.stocks()) == before
    assert log.entries == LEADER_LOG[:2]


def entry_after_tesla_bought(kind: Kind = TRADE, name: str = "ford", type_: str = "sell", quantity: int = 1,
                            key: str = "x", epoch: int = 1, number: int | None = None) -> Record:
    """Entry 2 after LEADER_LOG[1] (ford holds 5 there, tesla 7), as a peer might send it."""
    return Record(2, epoch, kind, number if number is not None else (1 if kind is TRADE else 0),
                  name, type_, quantity, key)


@pytest.mark.parametrize(
    "batch, leader_epoch",
    [
        ([entry_after_tesla_bought(name="nope")], 2),  # a stock not in the table
        ([entry_after_tesla_bought(name="x" * 100_000)], 2),
        ([entry_after_tesla_bought(type_="buy", quantity=6)], 2),  # more than ford holds
        ([entry_after_tesla_bought(quantity=-5)], 2),
        ([entry_after_tesla_bought(quantity=0)], 2),
        ([entry_after_tesla_bought(quantity=10**12)], 2),
        ([entry_after_tesla_bought(type_="steal")], 2),
        ([entry_after_tesla_bought(type_="")], 2),
        ([entry_after_tesla_bought(kind=REFUSED, type_="buy", quantity=1)], 2),  # a refusal that fits
        ([entry_after_tesla_bought(kind=REFUSED, type_="sell", quantity=90)], 2),  # a sell is never short
        ([entry_after_tesla_bought(kind=LEADER, type_="", quantity=0, key="x")], 2),  # a leader entry with a key
        ([entry_after_tesla_bought(key="k" * 129)], 2),
        ([entry_after_tesla_bought(key=" padded")], 2),
        ([entry_after_tesla_bought(key="tab\t")], 2),
        ([entry_after_tesla_bought(key="é")], 2),
        ([entry_after_tesla_bought(key=LEADER_LOG[1].key)], 2),  # a key the log holds
        ([entry_after_tesla_bought(key="dup"), Record(3, 1, TRADE, 2, "ford", "sell", 1, "dup")], 2),
        ([entry_after_tesla_bought(epoch=MAX_EPOCH + 1)], None),
        ([entry_after_tesla_bought()], MAX_EPOCH + 1),
        ([entry_after_tesla_bought(number=2**63 - 1)], 2),
    ],
)
def test_a_batch_no_leader_could_have_logged_is_refused_whole_and_changes_nothing(batch, leader_epoch) -> None:
    log = Log(LEADER_LOG[:2], epoch=1)
    before = (log.core.epoch, log.core.floor, log.core.role, log.core.last_index, log.core.book.stocks())
    with pytest.raises(MalformedBatch):
        log.accept(1, batch, leader_last=1 + len(batch), leader_epoch=leader_epoch)
    assert (log.core.epoch, log.core.floor, log.core.role, log.core.last_index, log.core.book.stocks()) == before
    assert log.entries == LEADER_LOG[:2]
    assert isinstance(log.accept(1, [entry_after_tesla_bought()], leader_last=2, leader_epoch=2), Accepted), \
        "a well-formed batch right after is taken"


def test_a_key_held_only_in_a_tail_the_batch_replaces_may_come_again() -> None:
    """A dead leader's entry under a key is dropped by the batch that logs the key anew."""
    dead_tail = log_of((TRADE, "ford", "sell", 1), after=LEADER_LOG[1], tag="dead")
    log = Log(LEADER_LOG[:2] + dead_tail)
    again = Record(2, 2, TRADE, 1, "ford", "sell", 2, dead_tail[0].key)
    outcome = log.accept(1, [again], leader_last=2, leader_epoch=2)
    assert isinstance(outcome, Accepted) and outcome.truncate_after == 1 and log.book_is_implied()


def test_indexes_out_of_range_are_malformed_and_a_gap_writes_no_epoch_out_of_range() -> None:
    log = Log(LEADER_LOG[:2], epoch=1)
    far = Record(MAX_INDEX + 1, 1, TRADE, 1, "ford", "sell", 1, "x")
    with pytest.raises(MalformedBatch):
        log.core.accept(MAX_INDEX, GENESIS, [far], log.entries.__getitem__)
    with pytest.raises(MalformedBatch):
        log.accept(1, [], leader_last=MAX_INDEX + 1)
    assert log.core.accept(MAX_INDEX, GENESIS, [], log.entries.__getitem__, leader_epoch=2) == Gap(1)
    assert log.core.epoch == 2


def test_a_batch_holding_an_entry_of_a_later_epoch_than_its_sender_is_refused() -> None:
    """A stream read while a newer leader rewrote the log could splice two logs; its entries of
    the newer epoch give it away."""
    log = Log(LEADER_LOG[:2], epoch=3)
    batch = [Record(2, 4, TRADE, 1, "ford", "sell", 1, "x")]
    before = (log.core.epoch, log.core.role, log.core.last_index)
    with pytest.raises(MalformedBatch):
        log.accept(1, batch, leader_epoch=3)
    assert (log.core.epoch, log.core.role, log.core.last_index) == before


def test_a_batch_whose_epochs_go_back_is_refused() -> None:
    log = Log(LEADER_LOG[:2])
    later = log_of((LEADER,), epoch=5, after=LEADER_LOG[1])
    earlier = log_of((TRADE, "ford", "sell", 1), epoch=2, after=later[0])
    with pytest.raises(MalformedBatch):
        log.accept(1, [later[0].record(), earlier[0].record()])
    with pytest.raises(MalformedBatch):  # nor may the first one go back behind the entry before it
        Log(LEADER_LOG[:2], epoch=1).core.accept(
            1, LEADER_LOG[1].chain, [Record(2, 0, TRADE, 1, "ford", "sell", 1, "y")], LEADER_LOG.__getitem__)


def test_a_batch_that_would_replace_committed_entries_is_refused_and_changes_nothing() -> None:
    log = Log(LEADER_LOG[:4])
    other = log_of((TRADE, "ford", "sell", 9), epoch=2, after=LEADER_LOG[1], tag="other")
    before = (log.core.last_index, log.core.book.stocks())
    with pytest.raises(MalformedBatch, match="known committed"):
        log.core.accept(1, LEADER_LOG[1].chain, [e.record() for e in other], log.entries.__getitem__,
                        leader_epoch=2, keep_through=3)
    assert (log.core.last_index, log.core.book.stocks()) == before
    # Replacing only what is not known committed is fine.
    assert isinstance(log.core.accept(1, LEADER_LOG[1].chain, [e.record() for e in other],
                                      log.entries.__getitem__, leader_epoch=2, keep_through=1), Accepted)


def test_a_well_numbered_batch_of_every_kind_is_accepted() -> None:
    log = Log(LEADER_LOG[:2])
    batch = log_of((TRADE, "ford", "sell", 1), (REFUSED, "ford", "buy", 90), (LEADER,), (TRADE, "ford", "buy", 1),
                   after=LEADER_LOG[1], tag="other")
    assert isinstance(log.accept(1, [e.record() for e in batch]), Accepted)
    assert log.entries == LEADER_LOG[:2] + batch
    assert log.core.last_number == 2 and log.book_is_implied()


# ---- the chain --------------------------------------------------------------------------------


def test_checkpoints_are_exponentially_spaced_and_end_at_the_start() -> None:
    assert checkpoint_numbers(-1) == [-1]
    assert checkpoint_numbers(0) == [0, -1]
    assert checkpoint_numbers(10) == [10, 9, 8, 6, 2, -1]
    assert len(checkpoint_numbers(100_000)) == 19


def test_chains_depend_on_every_field_and_the_past() -> None:
    base = Record(0, 1, TRADE, 0, "amc", "buy", 1, "k")
    variants = [
        Record(1, 1, TRADE, 0, "amc", "buy", 1, "k"),
        Record(0, 2, TRADE, 0, "amc", "buy", 1, "k"),
        Record(0, 1, REFUSED, 0, "amc", "buy", 1, "k"),
        Record(0, 1, TRADE, 1, "amc", "buy", 1, "k"),
        Record(0, 1, TRADE, 0, "amd", "buy", 1, "k"),
        Record(0, 1, TRADE, 0, "amc", "sell", 1, "k"),
        Record(0, 1, TRADE, 0, "amc", "buy", 2, "k"),
        Record(0, 1, TRADE, 0, "amc", "buy", 1, "j"),
    ]
    assert len({link(GENESIS, r) for r in [base, *variants]}) == 9
    assert link(GENESIS, base) != link(b"\x01" * 16, base)
    entries = chained([base, variants[0]])
    assert isinstance(entries[0], Entry) and entries[1].chain == link(entries[0].chain, variants[0])
    assert entries[1].record() == variants[0]
