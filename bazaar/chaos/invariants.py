"""The invariants a chaos run checks, as plain functions of plain data (no processes, no I/O).

Orders are anything with number, name, type and quantity (bazaar.core.orders.Order); trades
anything with name, type and quantity. Each check returns a Check: PASS or FAIL, with counter-
examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

EXAMPLES_SHOWN = 5
CLIENT_KEY_PREFIX = "client:"


@dataclass
class Check:
    code: str  # I1 .. I6
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


def check_acknowledged(
    acknowledged: Mapping[str, int],
    trades: Mapping[str, Any],
    served: Mapping[int, Any],
    logs: Mapping[int, Sequence[Any]],
) -> tuple[Check, list[tuple[str, str]]]:
    """I1: every acknowledged number reads back (GET /orders/n) as the trade acknowledged, and
    every replica's log holds it. Also returns the problems by key, for I6."""
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


def check_dense(logs: Mapping[int, Sequence[Any]]) -> Check:
    """I2: every replica's log is exactly the numbers 0..n-1."""
    check = Check("I2", "each log is exactly numbers 0..n-1")
    for replica, log in sorted(logs.items()):
        for position, order in enumerate(log):
            if order.number != position:
                check.problems.append(
                    f"replica {replica}: position {position} holds number {order.number} "
                    f"(after {log[position - 1].number if position else 'nothing'})"
                )
                break
    check.note = ", ".join(f"replica {r}: {len(log)} orders" for r, log in sorted(logs.items()))
    return check


def check_exactly_once(
    acknowledged: Mapping[str, int],
    refused: Mapping[str, str],
    in_doubt: set[str] | frozenset[str],
    sent: set[str] | frozenset[str] | Mapping[str, Any],
    log_keys: Mapping[int, Sequence[tuple[int, str]]],
) -> Check:
    """I3: each acknowledged key is in every log exactly once, under the number it got; no key is
    in a log twice; a log holds no trade the clients were refused or never sent."""
    check = Check("I3", "exactly-once: one key, one order, one number")
    doubtful_logged = 0
    for replica, rows in sorted(log_keys.items()):
        numbers_by_key: dict[str, list[int]] = {}
        for number, key in rows:
            numbers_by_key.setdefault(key, []).append(number)
        for key, numbers in sorted(numbers_by_key.items(), key=lambda kv: kv[1][0]):
            if len(numbers) > 1:
                check.problems.append(f"replica {replica}: key {key!r} is on orders {numbers}")
            if not key.startswith(CLIENT_KEY_PREFIX):
                check.problems.append(
                    f"replica {replica}: order {numbers[0]} has key {key!r}, not one a client sent"
                )
                continue
            client_key = key[len(CLIENT_KEY_PREFIX):]
            if client_key in refused:
                check.problems.append(
                    f"replica {replica}: order {numbers[0]} has key {client_key}, which was refused "
                    f"({refused[client_key]})"
                )
            elif client_key in in_doubt:
                doubtful_logged += 1
            elif client_key not in sent:
                check.problems.append(f"replica {replica}: order {numbers[0]} has unknown key {client_key}")
        for key, number in sorted(acknowledged.items(), key=lambda kv: kv[1]):
            logged = numbers_by_key.get(CLIENT_KEY_PREFIX + key)
            if logged is None:
                check.problems.append(f"replica {replica}: acknowledged key {key} (number {number}) is not in the log")
            elif logged[0] != number:
                check.problems.append(
                    f"replica {replica}: key {key} was acknowledged as {number} but is logged as {logged[0]}"
                )
    for key, outcome in sorted(refused.items()):
        if outcome.startswith("422"):
            check.problems.append(f"key {key} was answered {outcome!r} though it was only ever sent with one body")
    notes = [f"{len(acknowledged)} keys"]
    if in_doubt:
        notes.append(f"{len(in_doubt)} left in doubt, {doubtful_logged} of them logged")
    check.note = ", ".join(notes)
    return check


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
) -> Check:
    """I4: each stock's quantity = initial - buys + sells and volume = initial + traded, over the
    log; no quantity negative."""
    check = Check("I4", "the catalog agrees with the log (quantity = 1000 - buys + sells, volume = 100 + traded)")
    expected, unknown = expected_catalog(log, initial)
    check.problems.extend(unknown)
    for name in sorted(set(expected) | set(catalog)):
        want, have = expected.get(name), catalog.get(name)
        if have is None:
            check.problems.append(f"{name}: missing from the catalog")
            continue
        if have[0] < 0:
            check.problems.append(f"{name}: quantity is negative ({have[0]})")
        if want is None:
            check.problems.append(f"{name}: in the catalog but not expected")
        elif want != have:
            check.problems.append(
                f"{name}: catalog has quantity {have[0]}, volume {have[1]}; the log says "
                f"quantity {want[0]}, volume {want[1]} (off by {have[0] - want[0]:+d}, {have[1] - want[1]:+d})"
            )
    check.note = f"{len(log)} orders"
    return check


def check_identical(logs: Mapping[int, Sequence[Any]]) -> Check:
    """I5: all replicas' logs are identical."""
    check = Check("I5", "all replica logs identical")
    items = sorted(logs.items())
    if not items:
        return check
    first_id, first = items[0]
    for replica, log in items[1:]:
        for position in range(min(len(first), len(log))):
            if _as_dict(first[position].number, first[position]) != _as_dict(log[position].number, log[position]):
                check.problems.append(
                    f"replicas {first_id} and {replica} part at position {position}: "
                    f"{_as_dict(first[position].number, first[position])} vs {_as_dict(log[position].number, log[position])}"
                )
                break
        else:
            if len(first) != len(log):
                check.problems.append(
                    f"replica {first_id} has {len(first)} orders, replica {replica} has {len(log)}"
                )
    return check


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
