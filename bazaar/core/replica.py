"""One replica's log position, role, numbering and log matching, with no I/O.

`last_index` is the highest entry this replica has taken for writing (durable or on its way to
disk); `last_chain`, `last_epoch` and `last_number` are that entry's chain value, epoch and
transaction number; `last_durable` is the highest index on disk. Entries are appended and
accepted strictly in sequence, so the log is always 0..n-1 and so are transaction numbers.
`epoch` is the highest leadership epoch this replica has promised, stood for or followed: a
new promise or candidacy must be above it. `floor` is the oldest epoch whose leader it still
accepts batches from: the highest epoch it promised to another candidate, followed or led.
Standing for an epoch raises the floor too, for the candidacy's time; a candidacy that fails
withdraws that (`withdraw`), since nobody else counts on a candidate's promise to itself, so a
failed candidate follows the working leader again instead of refusing it for good.

A follower takes the leader's log as the truth: a batch is accepted only where the follower's
chain at `prev_index` matches the leader's; an entry that differs from the one held replaces
it and everything after it, and nothing an older epoch left is kept beyond the leader's last.

The replica's `book` (the stock table its log implies) follows every change to the log, so a
replica that becomes leader can check trades at once.

Nothing a peer sends is taken on trust: a batch whose entries no correct leader could have
logged (out of sequence, misnumbered, out of range, a trade that does not fit the book, a key
the log already holds) is refused whole before anything changes, and a promise is granted at
most one step beyond what this replica has seen (`reach`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Hashable

from bazaar.core.book import StockBook
from bazaar.core.bounds import MAX_EPOCH, MAX_INDEX, valid_key
from bazaar.core.chain import GENESIS, Entry, Kind, Record, entry_of, follows, link
from bazaar.core.orders import TRADE_TYPES, valid_quantity
from bazaar.core.stock import Stock, TradeCheck


class Role(enum.Enum):
    FOLLOWER = "follower"
    LEADER = "leader"


class NotLeader(Exception):
    """Only the leader appends new entries."""


class MalformedBatch(ValueError):
    """A batch that no correct leader sends (out of sequence, misnumbered, beyond its last, a
    trade its log could not hold)."""


@dataclass(frozen=True)
class Accepted:
    """Drop the log after `truncate_after` (when set), then write `entries`; the log then
    matches the sender's through `through`."""

    entries: list[Entry]
    through: int
    truncate_after: int | None = None


@dataclass(frozen=True)
class Gap:
    """No entry `prev_index` here: the sender must start from `last` instead."""

    last: int


@dataclass(frozen=True)
class Conflict:
    """Entry `prev_index` here differs from the sender's: it must start further back."""

    last: int


@dataclass(frozen=True)
class Stale:
    """The sender leads in an epoch older than one this replica has seen: it was replaced."""

    epoch: int


@dataclass(frozen=True, order=True)
class LogPosition:
    """How up to date a log is: compared by the last entry's epoch, then its index."""

    epoch: int
    index: int


EntryAt = Callable[[int], Entry]
# The index of the entry this log holds under a key, or None.
KeyHolder = Callable[[str], "int | None"]


class ReplicaCore:
    def __init__(self, book: StockBook, last: Entry | None = None, epoch: int = 0, floor: int | None = None) -> None:
        self.role = Role.FOLLOWER
        self.book = book
        self._set_last(last)
        self.last_durable = self.last_index
        self.epoch = max(epoch, self.last_epoch)
        self.floor = max(epoch if floor is None else min(floor, epoch), self.last_epoch)
        # While standing: (the epoch stood for, the floor before it).
        self._standing: tuple[int, int] | None = None
        # The index of the first entry of the epoch this replica leads in (its leader entry).
        self.first_own = -1
        # Per candidate (a configured replica: the servicer refuses other ids), the epoch it
        # last asked for and was refused as too far ahead. Not on disk: a restarted replica
        # refuses one attempt more.
        self._asked: dict[Hashable, int] = {}

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def position(self) -> LogPosition:
        return LogPosition(self.last_epoch, self.last_index)

    def next_epoch(self, seen: int = 0) -> int:
        """An epoch to stand for: above every epoch this replica has seen or been told of."""
        return max(self.epoch, seen) + 1

    def promise(self, epoch: int, own: bool = False, candidate: Hashable = None) -> bool:
        """Promise `epoch` to `candidate` (or, `own`, to ourselves, standing): granted only if
        it is above every epoch promised before, and for another candidate at most `reach`.
        From then on, leaders of older epochs are refused, and no other candidate gets this
        epoch: two leaders never share one."""
        if epoch <= self.epoch or epoch > MAX_EPOCH:
            return False
        if not own:
            if epoch > self.reach(candidate):
                self._asked[candidate] = epoch
                return False
            self._asked.pop(candidate, None)
        # Standing again (refused for a newer epoch) withdraws to where the first stand began.
        before = self._standing[1] if own and self._standing is not None else self.floor
        self._standing = (epoch, before) if own else None
        self.epoch = self.floor = epoch
        self.role = Role.FOLLOWER
        return True

    def reach(self, candidate: Hashable = None) -> int:
        """The highest epoch `candidate` may be promised now: one step beyond the highest epoch
        this replica has seen, or beyond that candidate's previous attempt if it was refused
        as too far. A candidate stands one above its own epoch and the epochs its followers
        reported refusing, so a follower that lagged (down while others took over) refuses its
        first attempt, reporting its own older epoch, and promises the next one, one above the
        first. So no single request moves this replica's epoch by more than one, and none past
        MAX_EPOCH: epoch + 1 never overflows."""
        return max(self.epoch, self._asked.get(candidate, 0)) + 1

    def withdraw(self, epoch: int) -> bool:
        """Our candidacy for `epoch` failed: accept the leaders we accepted before it again.
        The epoch stays used up (no later candidacy stands for it)."""
        standing = self._standing
        if standing is None or standing[0] != epoch:
            return False
        self._standing = None
        if self.floor != epoch or self.is_leader:
            return False
        self.floor = max(standing[1], self.last_epoch)
        return True

    def lead(self) -> Entry:
        """Lead in the epoch this replica promised itself (and a majority with it): the
        returned leader entry opens the epoch. Nothing of an older epoch counts as committed
        until it, or a later entry, is on a majority."""
        self.role = Role.LEADER
        self._standing = None
        entry = self._append(Kind.LEADER)
        self.first_own = entry.index
        return entry

    def follow(self) -> None:
        self.role = Role.FOLLOWER
        self.first_own = -1

    def place(self, name: str, type_: str | None, quantity: int, key: str) -> Entry | TradeCheck:
        """A new trade, checked against the book (leader only): the entry to log (a trade,
        or a refusal for lack of stock), or the TradeCheck that refuses it without logging
        (no such stock, bad type or quantity: the same answer whatever the log holds)."""
        if not self.is_leader:
            raise NotLeader()
        check = self.book.check(name, type_, quantity)
        if check is TradeCheck.OK:
            return self._append(Kind.TRADE, name, type_ or "", quantity, key)
        if check is TradeCheck.NOT_ENOUGH_STOCK:
            return self._append(Kind.REFUSED, name, type_ or "", quantity, key)
        return check

    def _append(self, kind: Kind, name: str = "", type_: str = "", quantity: int = 0, key: str = "") -> Entry:
        if not self.is_leader:
            raise NotLeader()
        number = self.last_number + (1 if kind is Kind.TRADE else 0)
        record = Record(self.last_index + 1, self.epoch, kind, number, name, type_, quantity, key)
        entry = entry_of(record, link(self.last_chain, record))
        self.book.apply(entry)
        self._set_last(entry)
        return entry

    def accept(
        self,
        prev_index: int,
        prev_chain: bytes,
        records: list[Record],
        entry_at: EntryAt,
        leader_last: int | None = None,
        leader_epoch: int | None = None,
        keep_through: int = -1,
        key_holder: KeyHolder | None = None,
    ) -> Accepted | Gap | Conflict | Stale:
        """A leader's batch (propagation or a stream). `entry_at(i)` is this replica's entry
        i <= last_index; `leader_last`, when given, is the sender's last index, and
        `leader_epoch` the epoch it leads in (a batch from an older epoch is refused, and one
        holding entries of a newer epoch is malformed). Entries through `keep_through` are known
        committed: a batch that would replace them is malformed, since no correct leader sends
        one. `key_holder(key)` finds the entry this log holds under a key; without it, keys
        are checked within the batch only. Everything is checked before anything changes: a
        malformed batch (MalformedBatch) leaves this replica as it was."""
        check_batch(prev_index, records, leader_last, leader_epoch)
        if leader_epoch is not None and (leader_epoch < self.floor or (leader_epoch == self.epoch and self.is_leader)):
            # First: a replaced leader must learn so (its batch may well not fit a log that
            # a newer leader has changed since).
            return Stale(self.epoch)
        prev = None if prev_index == -1 or prev_index > self.last_index else entry_at(prev_index)
        held = prev_index <= self.last_index
        matches = held and (GENESIS if prev is None else prev.chain) == prev_chain
        plan = self._plan(prev, prev_chain, records, entry_at, leader_last, leader_epoch, keep_through, key_holder) \
            if matches else None
        if leader_epoch is not None:
            self.epoch, self.floor = max(self.epoch, leader_epoch), max(self.floor, leader_epoch)
            self._standing = None
            self.follow()
        if not held:
            return Gap(self.last_index)
        if plan is None:
            return Conflict(self.last_index)
        entries, truncate_after, dropped = plan
        if truncate_after is not None:
            self._truncate(truncate_after, dropped, entry_at)
        for entry in entries:
            self.book.apply(entry)
        if entries:
            self._set_last(entries[-1])
            self.epoch = max(self.epoch, entries[-1].epoch)
            self.floor = max(self.floor, entries[-1].epoch)
        return Accepted(entries, prev_index + len(records), truncate_after)

    def _plan(
        self, prev: Entry | None, prev_chain: bytes, records: list[Record], entry_at: EntryAt,
        leader_last: int | None, leader_epoch: int | None, keep_through: int, key_holder: KeyHolder | None,
    ) -> tuple[list[Entry], int | None, list[Entry]]:
        """For a batch that follows an entry we hold: the entries to write, where to truncate
        first (None: nowhere) and the entries that drops. Raises MalformedBatch for a batch
        that does not fit our log there; changes nothing."""
        if records:
            _check_numbers(records[:1], -1 if prev is None else prev.number)
            if prev is not None and records[0].epoch < prev.epoch:
                raise MalformedBatch(f"entry {records[0].index} has an epoch older than the entry before it")
        chain = prev_chain
        truncate_after: int | None = None
        entries: list[Entry] = []
        for record in records:
            chain = link(chain, record)
            if truncate_after is None and record.index <= self.last_index:
                if entry_at(record.index).chain == chain:
                    continue  # already held
                truncate_after = record.index - 1
            entries.append(entry_of(record, chain))
        if (
            truncate_after is None
            and leader_last is not None
            and self.last_index > leader_last
            and (leader_epoch is None or entry_at(leader_last + 1).epoch < leader_epoch)
        ):
            # A tail this leader never appended: a dead leader's leftovers. (A tail of the
            # leader's own epoch means this batch is a late duplicate: keep it.)
            truncate_after = leader_last
        dropped: list[Entry] = []
        if truncate_after is not None:
            if truncate_after < keep_through:
                raise MalformedBatch(f"the batch would replace entry {truncate_after + 1}, known committed")
            dropped = [entry_at(i) for i in range(self.last_index, truncate_after, -1)]
        misfit = self.book.misfit(dropped, entries)
        if misfit is not None:
            raise MalformedBatch(f"entry {misfit.index} ({misfit.kind.value} of {misfit.quantity} {misfit.name!r}) "
                                 "is not one a leader could log after the entries before it")
        if key_holder is not None:
            kept = self.last_index if truncate_after is None else truncate_after
            for entry in entries:
                holder = key_holder(entry.key) if entry.key else None
                if holder is not None and holder <= kept:
                    raise MalformedBatch(f"entry {entry.index} has the key of entry {holder}: a key is logged once")
        return entries, truncate_after, dropped

    def may_install(self, last_index: int, epoch: int) -> bool:
        """Whether a snapshot of a leader of `epoch` ending at `last_index` may replace this
        log: from a leader this replica follows, not while it leads or stands, and only when
        it holds less (an entry of ours beyond the snapshot might be committed)."""
        return (not self.is_leader and self._standing is None and epoch >= self.floor
                and last_index > self.last_index)

    def installed(self, last: Entry, stocks: list[Stock], epoch: int) -> None:
        """A snapshot ending at `last` replaced this log, and is on disk."""
        self.book.reset(stocks)
        self._set_last(last)
        self.last_durable = last.index
        self.epoch, self.floor = max(self.epoch, epoch, last.epoch), max(self.floor, epoch, last.epoch)
        self.follow()

    def holds_newer_than(self, epoch: int) -> bool:
        """Whether this log holds entries of an epoch after `epoch`: a leader of it was
        established, so a leader of `epoch` that this replica refuses was replaced (an epoch
        only promised, to a candidate that may never win, is no such proof)."""
        return self.last_epoch > epoch

    def durable(self, index: int) -> None:
        """The log on disk now ends at `index` (writes and truncations finish in order)."""
        self.last_durable = index

    def _truncate(self, after: int, dropped: list[Entry], entry_at: EntryAt) -> None:
        for entry in dropped:
            self.book.unapply(entry)
        self._set_last(entry_at(after) if after >= 0 else None)
        self.last_durable = min(self.last_durable, after)

    def _set_last(self, entry: Entry | None) -> None:
        if entry is None:
            self.last_index, self.last_chain, self.last_epoch, self.last_number = -1, GENESIS, 0, -1
        else:
            self.last_index, self.last_chain = entry.index, entry.chain
            self.last_epoch, self.last_number = entry.epoch, entry.number


def check_batch(prev_index: int, records: list[Record], leader_last: int | None, leader_epoch: int | None) -> None:
    """What a batch must be whatever our log holds: in sequence and in range, each entry well
    formed, keys distinct, numbers and epochs running on."""
    if not -1 <= prev_index <= MAX_INDEX - len(records):
        raise MalformedBatch(f"entries after {prev_index}: out of range")
    if any(r.index != prev_index + 1 + i for i, r in enumerate(records)):
        raise MalformedBatch(f"entries do not follow {prev_index} in sequence")
    through = prev_index + len(records)
    if leader_last is not None and not through <= leader_last <= MAX_INDEX:
        raise MalformedBatch(f"entries up to {through} beyond the leader's last {leader_last}")
    if leader_epoch is not None and not 0 <= leader_epoch <= MAX_EPOCH:
        raise MalformedBatch(f"leader epoch {leader_epoch} out of range")
    keys: set[str] = set()
    for record in records:
        _check_record(record)
        if record.key in keys:
            raise MalformedBatch(f"entry {record.index} repeats a key of the batch: a key is logged once")
        if record.key:
            keys.add(record.key)
    if records:
        _check_numbers(records[1:], records[0].number)
        _check_epochs(records, leader_epoch)


def _check_record(record: Record) -> None:
    """One entry as a leader writes it: a leader entry carries no trade; a trade or refusal
    has a type, a quantity a trade may move and a well-formed key (or none)."""
    if not 0 <= record.epoch <= MAX_EPOCH or not -1 <= record.number <= record.index:
        raise MalformedBatch(f"entry {record.index}: epoch or number out of range")
    if record.kind is Kind.LEADER:
        if record.name or record.type or record.quantity or record.key:
            raise MalformedBatch(f"leader entry {record.index} carries a trade")
    elif record.type not in TRADE_TYPES or not valid_quantity(record.quantity) or not record.name \
            or (record.key and not valid_key(record.key)):
        raise MalformedBatch(f"entry {record.index} is not a well-formed trade")


def _check_epochs(records: list[Record], leader_epoch: int | None) -> None:
    """Epochs never decrease along a log, and a leader holds no entry of a later epoch than its own."""
    for before, record in zip(records, records[1:]):
        if record.epoch < before.epoch:
            raise MalformedBatch(f"entry {record.index} has an epoch older than the entry before it")
    if leader_epoch is not None and records[-1].epoch > leader_epoch:
        raise MalformedBatch(f"entry {records[-1].index} is of epoch {records[-1].epoch}, after the "
                             f"sender's {leader_epoch}")


def _check_numbers(records: list[Record], prev_number: int) -> None:
    """Transaction numbers run on from the entry before the batch: trades take the next one."""
    for record in records:
        if not follows(record, prev_number):
            raise MalformedBatch(f"entry {record.index} has number {record.number} after {prev_number}")
        prev_number = record.number
