"""The invariants a chaos run checks, as plain functions of plain data (no processes, no I/O).

Entries are anything with index, epoch, kind (bazaar.core.chain.Kind), number, name, type,
quantity and key (bazaar.core.chain.Entry); orders anything with number, name, type and
quantity (bazaar.core.orders.Order); trades anything with name, type and quantity; attempts
clients.Attempt; a history anything with the fields of clients.Records. Each check returns a
Check: PASS or FAIL, with counter-examples.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from bazaar.core.chain import Kind

EXAMPLES_SHOWN = 5
NOT_ENOUGH = "400 not enough stocks"  # clients.NOT_ENOUGH: the one refusal a log keeps
FRONTEND_KEY = re.compile(r"fe-[0-9a-f]{32}")  # a key the front end made for a keyless request


@dataclass
class Check:
    code: str  # I1 .. I7
    title: str
    problems: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems

    def lines(self, shown: int = EXAMPLES_SHOWN) -> list[str]:
        verdict = "PASS" if self.passed else "FAIL"
        head = f"{self.code} {verdict}  {self.title}" + (f" ({self.note})" if self.note else "")
        out = [head]
        for problem in self.problems[:shown]:
            out.append(f"      - {problem}")
        if len(self.problems) > shown:
            out.append(f"      ... and {len(self.problems) - shown} more")
        return out


def _as_dict(number: int, trade: Any) -> dict[str, object]:
    return {"number": number, "name": trade.name, "type": trade.type, "quantity": trade.quantity}


def _body(trade: Any) -> tuple[str, str, int]:
    return (trade.name, trade.type, trade.quantity)


def entry_fields(entry: Any) -> tuple[object, ...]:
    """Everything an entry says (its chain value aside): what I5 compares."""
    return (entry.index, entry.epoch, entry.kind.value, entry.number, entry.name, entry.type,
            entry.quantity, entry.key)


def describe_entry(entry: Any) -> str:
    what = f"trade {entry.number}" if entry.kind is Kind.TRADE else f"{entry.kind.value} entry"
    return f"entry {entry.index} ({what}, epoch {entry.epoch})"


def trades_of(entries: Iterable[Any]) -> list[Any]:
    """The trade entries of a log, in index order."""
    return [e for e in entries if e.kind is Kind.TRADE]


def _keyed(entries: Iterable[Any]) -> dict[str, list[Any]]:
    by_key: dict[str, list[Any]] = {}
    for e in entries:
        if e.key:
            by_key.setdefault(e.key, []).append(e)
    return by_key


# ---- I1 ----------------------------------------------------------------------------------------


def check_acknowledged(
    acknowledged: Mapping[str, int],
    trades: Mapping[str, Any],
    served: Mapping[int, Any],
    logs: Mapping[int, Sequence[Any]],
) -> tuple[Check, list[tuple[str, str]]]:
    """I1: every acknowledged number reads back (GET /orders/n) as the trade acknowledged, and
    every replica's log (its orders, by number) holds it. Also returns the problems by key, for I6."""
    check = Check("I1", "every acknowledged order reads back unchanged and is in every replica's log")
    by_key: list[tuple[str, str]] = []
    by_number: dict[int, str] = {}
    for key, number in sorted(acknowledged.items(), key=lambda kv: kv[1]):
        expected = _as_dict(number, trades[key])
        problems = []
        if number in by_number:
            problems.append(f"number {number} was acknowledged to two keys: {by_number[number]} and {key}")
        by_number[number] = key
        got = served.get(number)
        if got != expected:
            problems.append(f"order {number} (key {key}): expected {expected}, GET /orders/{number} gave {got}")
        for replica, log in sorted(logs.items()):
            entry = log[number] if 0 <= number < len(log) and log[number].number == number else None
            if entry is None:
                entry = next((o for o in log if o.number == number), None)
            if entry is None:
                problems.append(f"order {number} (key {key}) is missing from replica {replica}'s log")
            elif _as_dict(number, entry) != expected:
                problems.append(
                    f"order {number} (key {key}): expected {expected}, replica {replica} holds "
                    f"{_as_dict(number, entry)}"
                )
        for p in problems:
            check.problems.append(p)
            by_key.append((key, p))
    check.note = f"{len(acknowledged)} acknowledged"
    return check, by_key


# ---- I2 ----------------------------------------------------------------------------------------


def check_dense(entries: Mapping[int, Sequence[Any]]) -> Check:
    """I2: every replica's log is indexed 0..m-1 and its trade entries are numbered 0..n-1 in
    index order; any other entry carries the number of the last trade before it (-1: none)."""
    check = Check("I2", "each log's trades are numbered 0..n-1, in order, without gaps")
    notes = []
    for replica, log in sorted(entries.items()):
        trades = 0
        for position, e in enumerate(log):
            if e.index != position:
                check.problems.append(f"replica {replica}: position {position} holds index {e.index}")
                break
            expected = trades if e.kind is Kind.TRADE else trades - 1
            if e.number != expected:
                check.problems.append(
                    f"replica {replica}: {describe_entry(e)} has number {e.number}, expected {expected} "
                    f"({trades} trades before it)"
                )
                break
            trades += e.kind is Kind.TRADE
        notes.append(f"replica {replica}: {sum(e.kind is Kind.TRADE for e in log)} trades in {len(log)} entries")
    check.note = ", ".join(notes)
    return check


# ---- I3 ----------------------------------------------------------------------------------------


def _check_answers(history: Any, check: Check) -> None:
    """Every HTTP answer names its key, the one sent if any; a key's definite answers agree;
    no key sent with one body only was called reused (422)."""
    answers: dict[str, set[tuple[str, int | None]]] = {}
    for a in history.attempts:
        if not a.answered:
            continue
        if a.header is None:
            check.problems.append(
                f"client {a.client}'s attempt at {a.sent:.2f} s ({a.outcome}) came without an Idempotency-Key header"
            )
        elif a.sent_key is not None and a.header != a.sent_key:
            check.problems.append(
                f"client {a.client} sent key {a.sent_key} at {a.sent:.2f} s; the answer named {a.header}"
            )
        if a.definite and a.key:
            answers.setdefault(a.key, set()).add((a.outcome, a.number))
    for key, got in sorted(answers.items()):
        if len(got) > 1:
            shown = ", ".join(f"{o}" + (f" #{n}" if n is not None else "") for o, n in sorted(got, key=str))
            check.problems.append(f"key {key} got different definite answers: {shown}")
    for key, outcome in sorted(history.refused.items()):
        if outcome.startswith("422"):
            check.problems.append(f"key {key} was answered {outcome!r} though it was only ever sent with one body")


def _check_log_keys(history: Any, replica: int, log: Sequence[Any], check: Check) -> tuple[int, int]:
    """One replica's log against the history; returns (keys in doubt logged, lost trades logged)."""
    unclaimed = Counter(_body(t) for t in history.lost)
    doubtful = lost = 0
    for e in log:
        if e.kind is not Kind.LEADER and not e.key:
            check.problems.append(f"replica {replica}: {describe_entry(e)} has no key")
        elif e.kind is Kind.LEADER and e.key:
            check.problems.append(f"replica {replica}: {describe_entry(e)} has key {e.key!r}")
    by_key = _keyed(e for e in log if e.kind is not Kind.LEADER)
    for key, found in by_key.items():
        e = found[0]
        if len(found) > 1:
            check.problems.append(
                f"replica {replica}: key {key!r} is on entries {[x.index for x in found]}"
            )
        trade = history.trades.get(key)
        if trade is None:
            if FRONTEND_KEY.fullmatch(key) and unclaimed[_body(e)] > 0:
                unclaimed[_body(e)] -= 1  # a keyless trade whose only attempt got no answer
                lost += 1
            else:
                check.problems.append(
                    f"replica {replica}: {describe_entry(e)} has key {key!r}, which no client sent or was given"
                )
            continue
        if _body(e) != _body(trade):
            check.problems.append(
                f"replica {replica}: key {key} is logged as {e.type} {e.quantity} {e.name}, "
                f"but was sent as {trade.type} {trade.quantity} {trade.name}"
            )
        if key in history.refused and e.kind is Kind.TRADE:
            check.problems.append(
                f"replica {replica}: key {key} was answered {history.refused[key]!r} but is {describe_entry(e)}"
            )
        doubtful += key in history.in_doubt
    for key, number in sorted(history.acknowledged.items(), key=lambda kv: kv[1]):
        found = by_key.get(key)
        if not found:
            check.problems.append(f"replica {replica}: acknowledged key {key} (number {number}) is not in the log")
        elif found[0].kind is not Kind.TRADE or found[0].number != number:
            check.problems.append(
                f"replica {replica}: key {key} was acknowledged as {number} but is {describe_entry(found[0])}"
            )
    for key, outcome in sorted(history.refused.items()):
        if outcome == NOT_ENOUGH and not by_key.get(key):
            check.problems.append(
                f"replica {replica}: key {key} was refused for lack of stock, but the log keeps no entry for it"
            )
    return doubtful, lost


def check_exactly_once(history: Any, entries: Mapping[int, Sequence[Any]]) -> Check:
    """I3, exactly-once with keys stored verbatim: every key in a log is one a client sent or an
    answer's header gave (or, under a front-end key, a keyless trade that got no answer at all,
    matched by its body), at most once per log, logged with the body it was sent with; an
    acknowledged key is the trade entry of its number; a key answered with a refusal is no trade
    entry (a "not enough stocks" refusal must be kept as a refused entry); every answer names
    its key; a key's definite answers agree; no 422 for a key sent with one body only."""
    check = Check("I3", "exactly-once: each logged key was sent or given, once, with its answer")
    _check_answers(history, check)
    counts = [_check_log_keys(history, replica, log, check) for replica, log in sorted(entries.items())]
    doubtful, lost = counts[0] if counts else (0, 0)
    notes = [f"{len(history.trades)} keys", f"{len(history.acknowledged)} acknowledged",
             f"{len(history.refused)} refused"]
    if history.in_doubt:
        notes.append(f"{len(history.in_doubt)} in doubt, {doubtful} of them logged")
    if history.lost:
        notes.append(f"{len(history.lost)} keyless trades without an answer, {lost} of them logged")
    check.note = ", ".join(notes)
    return check


# ---- I4 ----------------------------------------------------------------------------------------


def expected_catalog(
    log: Sequence[Any], initial: Mapping[str, tuple[int, int]]
) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """(quantity, volume) of every stock after `log`, from `initial`; and the orders naming a
    stock the catalog does not have."""
    state = dict(initial)
    unknown = []
    for order in log:
        if order.name not in state:
            unknown.append(f"order {order.number} trades unknown stock {order.name!r}")
            continue
        quantity, volume = state[order.name]
        sign = -1 if order.type == "buy" else 1
        state[order.name] = (quantity + sign * order.quantity, volume + order.quantity)
    return state, unknown


def check_catalog(
    catalog: Mapping[str, tuple[int, int]],
    log: Sequence[Any],
    initial: Mapping[str, tuple[int, int]],
    applied: int | None = None,
) -> Check:
    """I4: the catalog is the initial table plus the log's trades numbered 0..applied (quantity =
    initial - buys + sells, volume = initial + traded, none negative), and it caught up:
    `applied` is the log's last transaction number. `applied` None: the whole log."""
    check = Check("I4", "the catalog is the initial table plus the log's trades, and it caught up")
    last = max((o.number for o in log), default=-1)
    through = last if applied is None else applied
    if through != last:
        check.problems.append(
            f"the catalog applied the log through number {through}, but the log's last trade is {last}"
            + (" (it did not catch up)" if through < last else " (beyond the log)")
        )
    expected, unknown = expected_catalog([o for o in log if o.number <= through], initial)
    check.problems.extend(unknown)
    for name in sorted(set(expected) | set(catalog)):
        want, have = expected.get(name), catalog.get(name)
        if have is None:
            check.problems.append(f"{name}: missing from the catalog")
            continue
        if have[0] < 0:
            check.problems.append(f"{name}: quantity is negative ({have[0]})")
        if want is None:
            check.problems.append(f"{name}: in the catalog but not in the initial table")
        elif want != have:
            check.problems.append(
                f"{name}: catalog has quantity {have[0]}, volume {have[1]}; the initial table and trades "
                f"0..{through} say quantity {want[0]}, volume {want[1]} "
                f"(off by {have[0] - want[0]:+d}, {have[1] - want[1]:+d})"
            )
    check.note = f"{len(log)} trades, applied through {through}"
    return check


# ---- I5 ----------------------------------------------------------------------------------------


def check_identical(entries: Mapping[int, Sequence[Any]]) -> Check:
    """I5: all replicas' logs are identical, entry by entry (index, epoch, kind, number, name,
    type, quantity, key)."""
    check = Check("I5", "all replica logs identical, entry by entry")
    items = sorted(entries.items())
    if not items:
        return check
    first_id, first = items[0]
    for replica, log in items[1:]:
        for position in range(min(len(first), len(log))):
            a, b = entry_fields(first[position]), entry_fields(log[position])
            if a != b:
                check.problems.append(f"replicas {first_id} and {replica} part at position {position}: {a} vs {b}")
                break
        else:
            if len(first) != len(log):
                check.problems.append(
                    f"replica {first_id} has {len(first)} entries, replica {replica} has {len(log)}"
                )
    check.note = f"{len(first)} entries each" if check.passed else ""
    return check


# ---- I6 ----------------------------------------------------------------------------------------


def check_leader_faults(
    acknowledgement_problems: Sequence[tuple[str, str]],
    acked_at: Mapping[str, float],
    leader_fault_times: Sequence[float],
) -> Check:
    """I6: I1 holds for every order acknowledged before a fault of the leader: no order a
    replaced leader acknowledged was lost or overwritten."""
    check = Check("I6", "no acknowledged order was overwritten by a replaced leader")
    if not leader_fault_times:
        check.note = "no leader faults in this run"
        return check
    last = max(leader_fault_times)
    exposed = sum(1 for t in acked_at.values() if t < last)
    check.note = f"{len(leader_fault_times)} leader faults, {exposed} orders acknowledged before the last"
    for key, problem in acknowledgement_problems:
        if acked_at.get(key, float("inf")) < last:
            check.problems.append(problem)
    return check


# ---- I7 ----------------------------------------------------------------------------------------


def only_503(attempts: Iterable[Any]) -> tuple[dict[str, int], set[str]]:
    """(keys every attempt of which got an HTTP answer and every answer was 503 -> how many;
    keys whose attempts were 503s and unanswered ones only: in doubt)."""
    by_key: dict[str, list[Any]] = {}
    for a in attempts:
        if a.key:
            by_key.setdefault(a.key, []).append(a)
    checked, mixed = {}, set()
    for key, tries in by_key.items():
        answered = [a for a in tries if a.answered]
        if not answered or any(a.status != 503 for a in answered):
            continue
        if len(answered) == len(tries):
            checked[key] = len(tries)
        else:
            mixed.add(key)
    return checked, mixed


def check_not_executed(attempts: Sequence[Any], entries: Mapping[int, Sequence[Any]]) -> Check:
    """I7: nothing answered 503 was executed: a key all of whose attempts were answered 503 is
    in no replica's log at all (neither a trade nor a refusal). A key whose 503s mix with
    attempts that got no answer is in doubt and not checked."""
    check = Check("I7", "nothing answered 503 was executed")
    checked, mixed = only_503(attempts)
    for replica, log in sorted(entries.items()):
        by_key = _keyed(log)
        for key in sorted(checked):
            if key in by_key:
                check.problems.append(
                    f"replica {replica}: key {key} was answered 503 on each of its {checked[key]} attempts "
                    f"but is {describe_entry(by_key[key][0])}"
                )
    check.note = f"{len(checked)} key{'' if len(checked) == 1 else 's'} answered 503 alone" + (
        f", {len(mixed)} more with unanswered attempts, in doubt" if mixed else ""
    )
    return check
